// Builds dist/: the app bundled by esbuild (minified ESM, @cairn/client
// from this repository through tsconfig.json's paths), the page and its
// config.js (empty: a Cairn site; see src/config.js for another origin).
// dist/ is committed, so deploying needs no npm; CI rebuilds and compares.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

mkdirSync("dist", { recursive: true });
await build({
  entryPoints: ["src/app.ts"],
  outfile: "dist/app.js",
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  legalComments: "none",
  logLevel: "warning",
});
copyFileSync("src/index.html", "dist/index.html");
copyFileSync("src/config.js", "dist/config.js");
