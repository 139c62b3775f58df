import { colors } from "../palette.js";
export function square(g, x, y, s, i) { g.fillStyle = colors[i % colors.length]; g.fillRect(x, y, s, s); }
