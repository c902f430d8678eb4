// The front-end build, run with Node.js at image build time (the real service runs `vite build`):
// copies src/app.js to dist/assets/app-<hash>.js (content-hashed, minified by stripping comments
// and indentation), rewrites the script tag in index.html to it and writes dist/manifest.json.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "assets"), { recursive: true });

const js = readFileSync(join(root, "src/app.js"), "utf8")
  .split("\n")
  .filter((line) => !line.trim().startsWith("//"))
  .map((line) => line.trim())
  .filter(Boolean)
  .join("\n");
const hash = createHash("sha256").update(js).digest("hex").slice(0, 8);
const asset = `assets/app-${hash}.js`;
writeFileSync(join(dist, asset), js + "\n");

const html = readFileSync(join(root, "src/index.html"), "utf8").replace("/src/app.js", `/${asset}`);
writeFileSync(join(dist, "index.html"), html);
writeFileSync(
  join(dist, "manifest.json"),
  JSON.stringify({ "src/app.js": { file: asset }, node: process.version }, null, 2) + "\n",
);
console.log(`built ${asset} with node ${process.version}`);
