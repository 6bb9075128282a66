// Builds @purple/client the way a Node user receives it from JSR's npm registry: every module as
// plain JavaScript plus its .d.ts, with relative imports pointing at the .js files. The .d.ts come
// from TypeScript's isolated declarations, as JSR's come from its "fast check" (both need the
// explicit types that "no slow types" asks for).
//
// Usage: node build_client.mjs <path of typescript.js> <source dir> <output dir> <file.ts>...
// Run by tests/node_client_test.ts, which writes package.json.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";

const [typescript, source, output, ...files] = process.argv.slice(2);
const ts = createRequire(import.meta.url)(typescript);

const compilerOptions = { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 };
const declarationOptions = { ...compilerOptions, declaration: true, isolatedDeclarations: true };

/** `./x.ts` becomes `./x.js` in imports, exports and `import()` (of values and of types). */
function toJs(code) {
  return code.replace(/((?:from|import\()\s*["'])(\.{1,2}\/[^"']+)\.ts(["'])/g, "$1$2.js$3");
}

function fail(file, diagnostics) {
  const messages = diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
  throw new Error(`Cannot build ${file}:\n${messages.join("\n")}`);
}

for (const file of files) {
  const text = readFileSync(`${source}/${file}`, "utf8");
  const js = ts.transpileModule(text, { fileName: file, compilerOptions, reportDiagnostics: true });
  if (js.diagnostics.length > 0) fail(file, js.diagnostics);
  const dts = ts.transpileDeclaration(text, {
    fileName: file,
    compilerOptions: declarationOptions,
    reportDiagnostics: true,
  });
  if (dts.diagnostics.length > 0) fail(file, dts.diagnostics);
  const base = `${output}/${file.replace(/\.ts$/, "")}`;
  mkdirSync(dirname(base), { recursive: true });
  writeFileSync(`${base}.js`, toJs(js.outputText));
  writeFileSync(`${base}.d.ts`, toJs(dts.outputText));
}
