// Builds a JavaScript plugin into a component with @bytecodealliance/componentize-js,
// called as a library (its CLI cannot read WIT directories here):
//   node scripts/js/componentize.mjs WIT_DIR WORLD SOURCE.js OUT.wasm
// The package comes from scripts/js/node_modules (scripts/setup.sh installs the version
// package.json pins); scripts/build-plugins.sh runs this for plugins/js/*/app.js.
import { componentize } from "@bytecodealliance/componentize-js";
import { readFile, writeFile } from "node:fs/promises";
import { resolve } from "node:path";

const [witPath, worldName, source, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node scripts/js/componentize.mjs WIT_DIR WORLD SOURCE.js OUT.wasm");
  process.exit(2);
}
const { component } = await componentize(await readFile(source, "utf8"), {
  witPath: resolve(witPath),
  worldName,
  // The host gives plugins no clocks, sockets or files: leave out what we do not need.
  disableFeatures: ["http", "fetch-event"],
});
await writeFile(out, component);
