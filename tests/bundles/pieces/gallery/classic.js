// A classic script: runs at once, before the body is parsed.
window.ovenReady = false;
window.order = ["classic:" + (document.body ? "body" : "no-body")];
