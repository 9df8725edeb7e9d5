// The dashboard's chart library on its own (vega-embed with Vega and Vega-Lite: ~0.9 MB of the dashboard's
// 1.3 MB). The dashboard asks its kernel for this module once its counts and lists are drawn and imports it
// from a blob URL, so the first paint does not carry, parse or compile it. No React here: it draws into the
// element it is given.
import embed from "vega-embed";

export default embed;
