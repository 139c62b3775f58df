import { draw } from "./lib/draw.js";
import { colors } from "palette";
import { square } from "shapes/square.js";
import { ready } from "./lib/state.js";
import { ping } from "./lib/a.js";

const sprite = document.getElementById("sprite");
await sprite.decode();
await document.fonts.load('22px "Piece"');
const { extra } = await import("./lazy.js");
const word = "not an import: import('./nowhere.js')";
draw(document.getElementById("c"), { colors, square, sprite, text: `${ping()} ${extra} ${`nested ${colors.length}`}`, word });
window.order.push("main");
ready("main");
