#!/usr/bin/env node
// Lets forge use solc-js (the official compiler built to WebAssembly) because native solc
// binaries cannot be downloaded on our machines. Forge calls a solc binary two ways:
//   solc --version               -> must print "Version: <x.y.z+commit...>"
//   solc --standard-json [...]   -> standard JSON in on stdin, standard JSON out on stdout
// Stdin is read with stream events: a blocking readFileSync(0) fails with EAGAIN under forge.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require(path.join(__dirname, "..", "node_modules", "solc"));

const args = process.argv.slice(2);

if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}

if (!args.includes("--standard-json")) {
  process.stderr.write("solc-shim: only --version and --standard-json are supported\n");
  process.exit(2);
}

// Forge passes --allow-paths and --base-path; resolve imports against them and the cwd.
const roots = [process.cwd()];
for (let i = 0; i < args.length; i += 1) {
  if ((args[i] === "--base-path" || args[i] === "--include-path") && args[i + 1]) roots.push(args[i + 1]);
  if (args[i] === "--allow-paths" && args[i + 1]) roots.push(...args[i + 1].split(","));
}

function findImports(importPath) {
  const candidates = path.isAbsolute(importPath) ? [importPath] : roots.map((r) => path.resolve(r, importPath));
  for (const candidate of candidates) {
    try {
      return { contents: fs.readFileSync(candidate, "utf8") };
    } catch (_) {
      // try the next root
    }
  }
  return { error: `File not found: ${importPath}` };
}

const chunks = [];
process.stdin.on("data", (chunk) => chunks.push(chunk));
process.stdin.on("end", () => {
  const input = Buffer.concat(chunks).toString("utf8");
  const output = solc.compile(input, { import: findImports });
  process.stdout.write(output);
});
