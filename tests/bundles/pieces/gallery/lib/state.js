// One instance for every importer: ready only once both the module and the inline script said so.
const marks = new Set();
export function ready(who) {
  marks.add(who);
  window.marks = [...marks].sort();
  if (marks.has("main") && marks.has("inline")) window.ovenReady = true;
}
