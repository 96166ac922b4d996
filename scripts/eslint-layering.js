// ESLint rule `ukc/layering`: the folder layering of ARCHITECTURE.md, enforced.
//
// Every top-level folder under src/ (an "area": oci, store, registry, ...) is a package
// with one public face, its index.ts. Two things are checked on every relative import or
// re-export in a source file under src/:
//   1. an import that leaves its own area names the other area's index.js, never a file
//      inside it (`../oci/index.js`, not `../oci/digest.js`);
//   2. the arrow from one area to the other is one the layering allows (ALLOWED below).
// Test files (*.test.ts, *.test-support.ts, *.test-double.ts) are exempt: tests may reach
// into any area to drive it. `util` holds helpers without domain knowledge and may be
// imported by every area; it imports no area itself. `log` (pino) is as low: it imports
// only util.
import { dirname, relative, resolve, sep } from 'node:path';

/** Which areas each area may import (besides itself and util). The single source of truth. */
export const ALLOWED = {
  util: [],
  log: [],
  oci: [],
  sandbox: [],
  store: ['oci'],
  auth: ['oci'],
  client: ['oci'],
  metrics: ['auth', 'log'],
  api: ['auth', 'oci', 'log'],
  registry: ['oci', 'store', 'auth', 'log', 'metrics'],
  builder: ['oci', 'client', 'sandbox'],
  controlplane: ['registry', 'store', 'auth', 'api', 'oci', 'client', 'log', 'metrics'],
  node: ['oci', 'store', 'registry', 'client', 'auth', 'sandbox', 'api', 'log', 'metrics'],
  cli: ['client', 'builder', 'oci'],
  config: ['registry', 'node', 'controlplane', 'log', 'auth'],
  daemon: ['*'],
};

const TEST_FILE = /\.(test|test-support|test-double)\.ts$/;

function areaOf(srcRoot, file) {
  const rel = relative(srcRoot, file);
  if (rel.startsWith('..') || rel.split(sep).length < 2) return undefined;
  return rel.split(sep)[0];
}

/** @type {import('eslint').Rule.RuleModule} */
const layering = {
  meta: {
    type: 'problem',
    docs: { description: 'imports across src/ folders go through the folder index.ts and follow the layering table' },
    schema: [],
    messages: {
      face: "'{{from}}' reaches into '{{target}}': import '{{face}}' (the public face of src/{{to}}) instead",
      arrow: "src/{{from}} may not import src/{{to}} (layering: {{from}} may import {{allowed}})",
    },
  },
  create(context) {
    const file = context.filename;
    const srcRoot = resolve(context.cwd, 'src');
    const from = areaOf(srcRoot, file);
    if (!from || TEST_FILE.test(file)) return {};
    function check(node) {
      const spec = node.source && node.source.value;
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const target = resolve(dirname(file), spec);
      const to = areaOf(srcRoot, target);
      if (!to || to === from) return;
      const allowed = ALLOWED[from] ?? [];
      if (to !== 'util' && !allowed.includes('*') && !allowed.includes(to)) {
        context.report({ node: node.source, messageId: 'arrow', data: { from, to, allowed: ['util', ...allowed].join(', ') } });
        return;
      }
      const face = resolve(srcRoot, to, 'index.js');
      if (target !== face) {
        const wanted = relative(dirname(file), face);
        context.report({
          node: node.source,
          messageId: 'face',
          data: { from: relative(srcRoot, file), target: spec, to, face: wanted.startsWith('.') ? wanted : `./${wanted}` },
        });
      }
    }
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check, ImportExpression: check };
  },
};

export default { rules: { layering } };
