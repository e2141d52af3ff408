// Paddock's JavaScript runtime: one component per world (StarlingMonkey, this loader and the
// guest SDK, built once by componentize-js) that runs a plugin's JavaScript carried beside
// it. `paddock plugin build DIR` appends the project's `.js` files to this runtime as the
// component's `paddock:app` custom section; the host hands them back through
// `paddock:runtime/app.source` (wit/runtime/runtime.wit). On its first call this loader
// reads them, evaluates `app.js` (and the files it imports by relative path, the guest SDK
// `paddock_sdk.js` among them) and from then on forwards each call of the world's export to
// the object `app.js` exports under the same name (`rewardFn`, `env`, `goalEnv`) — exactly
// as a componentize-js build of `app.js` would call it.
//
// The modules are ES modules as componentize-js takes them, with these forms of import and
// export (each on its own lines): `import { a, b as c } from "…"`, `import * as ns from "…"`,
// `export const|let|var|function|class NAME`, `export { a, b as c }`. Imports name another
// project file by relative path (`./paddock_sdk.js`) or an interface of the world
// (`paddock:rl/log@0.1.1`, any 0.1 version).
//
// The paddock binary builds this file with a head that imports the world's interfaces into
// `IMPORTS` and the guest SDK's text into `BUILTIN` (a plugin may import `./paddock_sdk.js`
// without carrying it), and a tail that exports the world's forwarders (`host/src/build.rs`).

const MAGIC = "PDKAPP1\n";

function utf8(bytes) {
  return new TextDecoder("utf-8").decode(bytes);
}

// The files of a `PDKAPP1` section: path → bytes.
function parse(blob) {
  const bytes = blob instanceof Uint8Array ? blob : new Uint8Array(blob);
  if (bytes.length < MAGIC.length || utf8(bytes.subarray(0, MAGIC.length)) !== MAGIC) {
    throw new Error("the plugin's paddock:app section does not start with PDKAPP1");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const files = new Map();
  let at = MAGIC.length;
  while (at < bytes.length) {
    const n = view.getUint32(at, true);
    const path = utf8(bytes.subarray(at + 4, at + 4 + n));
    at += 4 + n;
    const m = view.getUint32(at, true);
    files.set(path, bytes.subarray(at + 4, at + 4 + m));
    at += 4 + m;
  }
  return files;
}

// `a, b as c` → [["a", "a"], ["b", "c"]] (imported name, local name).
function names(list) {
  return list
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const [from, to] = s.split(/\s+as\s+/);
      return [from.trim(), (to || from).trim()];
    });
}

// `replacement` followed by as many newlines as `matched` held, so that line numbers in
// errors stay those of the file.
function sameLines(matched, replacement) {
  return replacement + "\n".repeat((matched.match(/\n/g) || []).length);
}

// A module's text as the body of a strict-mode function of (__import, __exports), as an
// ES module is strict; its lines stay where they were.
function transform(text, path) {
  const unsupported = text.match(/^[ \t]*export\s+(default\b|\*|\{[^}]*\}\s*from\b)/m);
  if (unsupported) {
    throw new Error(`${path}: \`export ${unsupported[1]} …\` is not supported by Paddock's JavaScript runtime (export named declarations, or \`export { a, b as c }\`)`);
  }
  const exported = [];
  let body = text
    .replace(/^[ \t]*import\s*\{([^}]*)\}\s*from\s*["']([^"']+)["'];?/gm, (m, list, spec) => {
      const parts = names(list).map(([a, b]) => (a === b ? a : `${a}: ${b}`));
      return sameLines(m, `const { ${parts.join(", ")} } = __import(${JSON.stringify(spec)});`);
    })
    .replace(/^[ \t]*import\s*\*\s*as\s+(\w+)\s+from\s*["']([^"']+)["'];?/gm, (m, ns, spec) => sameLines(m, `const ${ns} = __import(${JSON.stringify(spec)});`))
    .replace(/^[ \t]*export\s*\{([^}]*)\};?/gm, (m, list) => {
      for (const [local, as] of names(list)) exported.push([local, as]);
      return sameLines(m, "");
    })
    .replace(/^([ \t]*)export\s+(?=(async\s+)?(function\*?|class|const|let|var)\s)/gm, "$1");
  for (const m of text.matchAll(/^[ \t]*export\s+(?:async\s+)?(?:function\*?|class|const|let|var)\s+([A-Za-z_$][\w$]*)/gm)) {
    exported.push([m[1], m[1]]);
  }
  // A name matched inside a comment or a string was never declared: skip it.
  const tail = exported.map(([local, as]) => `if (typeof ${local} !== "undefined") __exports[${JSON.stringify(as)}] = ${local};`);
  return `"use strict"; ${body}\n${tail.join("\n")}`;
}

// `./x.js` relative to `from` (a project path).
function resolve(from, spec) {
  const parts = from.split("/").slice(0, -1);
  for (const p of spec.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return parts.join("/");
}

function evaluate(path, files, done) {
  if (done.has(path)) return done.get(path);
  let bytes = files.get(path);
  // The guest SDK rides in the runtime: a plugin may import it without carrying it.
  const base = path.split("/").pop();
  if (bytes === undefined && Object.prototype.hasOwnProperty.call(BUILTIN, base)) bytes = new TextEncoder().encode(BUILTIN[base]);
  if (bytes === undefined) throw new Error(`the plugin carries no ${path} (it carries ${[...files.keys()].join(", ") || "nothing"})`);
  const exportsObj = {};
  done.set(path, exportsObj);
  const importer = (spec) => {
    if (spec.startsWith("./") || spec.startsWith("../")) return evaluate(resolve(path, spec), files, done);
    const iface = spec.split("@")[0];
    if (Object.prototype.hasOwnProperty.call(IMPORTS, iface)) return IMPORTS[iface];
    throw new Error(`${path} imports \`${spec}\`, which this runtime's world does not provide (it provides ${Object.keys(IMPORTS).join(", ")} and the plugin's own files by relative path)`);
  };
  let fn;
  try {
    fn = new Function("__import", "__exports", transform(utf8(bytes), path));
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    // The function's body starts two lines into its source.
    const line = typeof e.lineNumber === "number" ? ` line ${e.lineNumber - 2}` : "";
    throw new Error(`${path}${line}: ${e.name}: ${e.message}`);
  }
  fn(importer, exportsObj);
  return exportsObj;
}

let app = null;
let failed = null;

function refuse(message) {
  const e = new Error(message);
  e.payload = { tag: "invalid-state", val: message };
  return e;
}

// The project's `app.js` module, evaluated on the first call (or why it cannot be).
function load() {
  if (app !== null) return app;
  if (failed !== null) throw refuse(failed);
  try {
    const blob = source();
    if (blob.length === 0) {
      throw new Error("this is Paddock's JavaScript runtime without a plugin in it: build one with `paddock plugin build DIR` (DIR holds app.js)");
    }
    app = evaluate("app.js", parse(blob), new Map());
    return app;
  } catch (e) {
    failed = `loading the plugin's app.js failed: ${e && e.message ? e.message : e}`;
    throw refuse(failed);
  }
}

// An object whose `methods` call those of the app's export `name`.
function forward(name, methods) {
  const out = {};
  for (const m of methods) {
    out[m] = (...args) => {
      const target = load()[name];
      if (target === undefined) throw refuse(`app.js exports no \`${name}\` (the world's export)`);
      return target[m](...args);
    };
  }
  return out;
}
