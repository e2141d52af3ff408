// Builds a JavaScript plugin into a component with @bytecodealliance/componentize-js,
// called as a library (its CLI cannot read WIT directories here):
//   node scripts/js/componentize.mjs WIT_DIR WORLD SOURCE.js OUT.wasm
// The package comes from scripts/js/node_modules (scripts/setup.sh installs the version
// package.json pins); scripts/build-plugins.sh runs this for plugins/js/*/app.js.
import { componentize } from "@bytecodealliance/componentize-js";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";

const [witPath, worldName, source, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node scripts/js/componentize.mjs WIT_DIR WORLD SOURCE.js OUT.wasm");
  process.exit(2);
}
// componentize-js takes one module. The only bundling done here: a relative import
// (`import { a, b } from "./paddock_sdk.js"`, the guest SDK) is replaced by that file's
// text with its `export` keywords dropped, once per file.
async function inline(path, seen = new Set()) {
  const text = await readFile(path, "utf8");
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/^import\s*\{[^}]*\}\s*from\s*["'](\.{1,2}\/[^"']+)["'];?[ \t]*$/gm)) {
    parts.push(text.slice(last, m.index));
    const dep = resolve(dirname(path), m[1]);
    if (!seen.has(dep)) {
      seen.add(dep);
      parts.push((await inline(dep, seen)).replace(/^export\s+(?=(async\s+)?(function|class|const|let)\b)/gm, ""));
    }
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return parts.join("");
}

const { component } = await componentize(await inline(resolve(source)), {
  witPath: resolve(witPath),
  worldName,
  // The host gives plugins no clocks, sockets or files: leave out what we do not need.
  disableFeatures: ["http", "fetch-event"],
});
await writeFile(out, component);
