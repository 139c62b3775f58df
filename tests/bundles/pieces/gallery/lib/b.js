import { ping } from "./a.js";  // a cycle: a -> b -> a
export function pong() { return typeof ping === "function" ? "pong" : "?"; }
