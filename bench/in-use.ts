/**
 * In-use accounting: Docker Engine API requests per reconcile of a plugin whose change would
 * disrupt it (an upgrade under inUse Wait), against the private dockerd of test/env.
 *
 *   node bench/in-use.ts [--volumes 20] [--containers 40]
 *
 * The host has `--volumes` volumes of the volume plugin and `--containers` containers (created, not
 * started) from the busybox image. Each row is one lookup through the docker store, counted by the
 * engine client's request observer:
 *   first        cold: the listing the plugin's interface needs (volumes for a volume driver)
 *   cached       within the 2 s the listing is kept: none
 *   expired      after the TTL: the listing again
 *   log driver   the same host asked for a log-driver plugin: the container listing, then one
 *                inspect per container never seen, at most 16 per lookup; a container's log
 *                driver cannot change, so later lookups inspect only new containers
 * The peer is what a script with the docker CLI asks for the same answer: `docker volume ls
 * --filter driver=`, `docker network ls --filter driver=`, `docker ps -a` and `docker inspect` of
 * every container (one request per CLI call, plus the CLI's own version ping per call).
 */
import { parseArgs } from 'node:util';
import { connectDockerStore } from '../controller/store/docker/store.ts';
import type { InstalledPlugin } from '../controller/store/store.ts';
import { docker, envScript, startEnv, stopEnv } from '../test/integration/harness.ts';

const { values } = parseArgs({
  options: { volumes: { type: 'string', default: '20' }, containers: { type: 'string', default: '40' } },
});
const VOLUMES = Number.parseInt(values.volumes, 10);
const CONTAINERS = Number.parseInt(values.containers, 10);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const env = await startEnv();
let requests: string[] = [];
const store = await connectDockerStore({
  host: env.dockerHost,
  onRequest: (method, path) => requests.push(`${method} ${path}`),
});
try {
  await envScript('busybox-image');
  await docker([
    'plugin',
    'install',
    '--grant-all-permissions',
    '--alias',
    'vol',
    `${env.registry}/test/vol:1.0`,
  ]);
  for (let i = 0; i < VOLUMES; i++) await docker(['volume', 'create', '-d', 'vol:latest', `bench-v${i}`]);
  for (let i = 0; i < CONTAINERS; i++) {
    await docker([
      'create',
      '--name',
      `bench-c${i}`,
      '--network',
      'none',
      'plugctl-test/busybox:1',
      '/bin/busybox',
      'true',
    ]);
  }
  const vol = await store.inspect('vol:latest');
  if (vol === undefined) throw new Error('vol:latest is not installed');
  const logs: InstalledPlugin = { ...vol, capabilities: ['logdriver'] };

  const rows: [string, number, string][] = [];
  const lookup = async (label: string, plugin: InstalledPlugin): Promise<void> => {
    requests = [];
    const usage = (await store.usage([plugin])).get(plugin.name);
    const inspects = requests.filter((r) => /\/containers\/[^/]+\/json$/.test(r)).length;
    const detail = `${requests.length - inspects} listing(s), ${inspects} inspect(s)${usage?.complete === false ? ', answer incomplete' : ''}`;
    rows.push([label, requests.length, detail]);
  };
  await lookup('first (volume driver)', vol);
  await lookup('cached', vol);
  await sleep(2100);
  await lookup('expired', vol);
  for (let i = 1; i <= Math.ceil(CONTAINERS / 16) + 1; i++) {
    await lookup(`log driver, lookup ${i}`, logs);
    await sleep(2100);
  }
  const peer = 3 + CONTAINERS;
  console.log(`${VOLUMES} volumes, ${CONTAINERS} containers`);
  console.log(`${'lookup'.padEnd(26)}${'requests'.padStart(9)}  detail`);
  for (const [label, n, detail] of rows)
    console.log(`${label.padEnd(26)}${String(n).padStart(9)}  ${detail}`);
  console.log(
    `${'docker CLI script (peer)'.padEnd(26)}${String(peer).padStart(9)}  volume ls, network ls, ps -a, inspect x${CONTAINERS}, each lookup`,
  );
  const first = rows[0]?.[1] ?? 0;
  console.log(
    `\nplugctl / peer requests: first ${(first / peer).toFixed(3)}, cached 0, log driver worst ${(Math.max(...rows.map((r) => r[1])) / peer).toFixed(3)}`,
  );
} finally {
  await store.close();
  await stopEnv();
}
