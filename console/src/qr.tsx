import { encode } from "uqr";

/**
 * A QR code of text drawn as one SVG path (no canvas, no inline script: the
 * console's CSP allows it as is). Medium error correction and the standard
 * four-module quiet zone, which phone scanners need to find the code.
 */
export function QRCode({ text, id, size = 200 }: { text: string; id?: string; size?: number }) {
  const qr = encode(text, { ecc: "M", border: 4 });
  let d = "";
  qr.data.forEach((row, y) => row.forEach((dark, x) => { if (dark) d += `M${x} ${y}h1v1h-1z`; }));
  return (
    <svg id={id} role="img" aria-label="QR code" width={size} height={size} viewBox={`0 0 ${qr.size} ${qr.size}`}
      shape-rendering="crispEdges" style={{ background: "#fff" }}>
      <path d={d} fill="#000" />
    </svg>
  );
}
