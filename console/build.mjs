// Builds dist/: the console bundled by esbuild (minified ESM, Preact,
// @cairn/client from this repository through tsconfig.json's paths), its
// stylesheet and the page. File names carry no hash, so a rebuild of the
// same sources gives the same bytes: dist/ is committed and embedded in the
// cairn binary (console.go), and CI rebuilds and compares.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist", { recursive: true });
await build({
  entryPoints: ["src/main.tsx"],
  outfile: "dist/app.js",
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  logLevel: "warning",
});
copyFileSync("src/index.html", "dist/index.html");
copyFileSync("src/style.css", "dist/style.css");
