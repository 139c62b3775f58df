import { pong } from "./b.js";
export function ping() { return "ping-" + pong(); }
