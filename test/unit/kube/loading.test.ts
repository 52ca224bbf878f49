// File mode must not pay for Kubernetes mode: importing the CLI and every command module loads neither
// @kubernetes/client-node nor controller/kube/ (both cost memory and start-up; docs/architecture.md).
// Kubernetes mode itself loads only client-node's two small modules, never its KubeConfig (which
// imports the whole generated API).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'node:test';

const run = promisify(execFile);
const root = new URL('../../../', import.meta.url).href;

/** URLs of every module a child process resolves while importing `modules`. */
async function loadedBy(modules: string[]): Promise<string[]> {
  const script = [
    "import { registerHooks } from 'node:module';",
    'const seen = new Set();',
    'registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.add(r.url); return r; } });',
    ...modules.map((m) => `await import(${JSON.stringify(new URL(m, root).href)});`),
    'console.log(JSON.stringify([...seen]));',
  ].join('\n');
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
  return JSON.parse(stdout) as string[];
}

test('the CLI and the file-mode commands load no Kubernetes code', async () => {
  const loaded = await loadedBy([
    'controller/main.ts',
    'controller/cli/apply.ts',
    'controller/cli/diff.ts',
    'controller/cli/get.ts',
    'controller/cli/run.ts',
    'controller/cli/build.ts',
  ]);
  assert.ok(
    loaded.some((url) => url.endsWith('/controller/cli/run.ts')),
    'the probe sees what is loaded',
  );
  assert.deepEqual(
    loaded.filter((url) => url.includes('/@kubernetes/') || url.includes('/controller/kube/')),
    [],
  );
});

test('controller/kube loads only client-node config_types and exec_auth, never its KubeConfig or generated API', async () => {
  const modules = ['config', 'client', 'informer', 'apply', 'leader', 'slots', 'events', 'fleet'].map(
    (m) => `controller/kube/${m}.ts`,
  );
  const loaded = await loadedBy([...modules, 'node_modules/@kubernetes/client-node/dist/exec_auth.js']);
  const fromClientNode = loaded
    .filter((url) => url.includes('/@kubernetes/client-node/'))
    .map((url) => url.replace(/^.*\/@kubernetes\/client-node\//, ''))
    .sort();
  assert.deepEqual(fromClientNode, ['dist/config_types.js', 'dist/exec_auth.js']);
});

test('plugctl run --kube loads client-node config_types only (exec_auth when a kubeconfig asks for it)', async () => {
  const loaded = await loadedBy(['controller/cli/run-kube.ts']);
  const fromClientNode = loaded
    .filter((url) => url.includes('/@kubernetes/client-node/'))
    .map((url) => url.replace(/^.*\/@kubernetes\/client-node\//, ''))
    .sort();
  assert.deepEqual(fromClientNode, ['dist/config_types.js']);
});
