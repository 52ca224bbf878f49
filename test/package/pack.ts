/**
 * `npm pack` of this checkout, as a release would make it (its prepack compiles to dist/), from a
 * copy of the sources so that the checkout gets no dist/ (bin/launch.js would prefer a stale build
 * to the sources). Shared by test/package/ and the image test.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, symlinkSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The checkout's root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The environment with the pinned Node 24 first on PATH, for npm and `#!/usr/bin/env node`. */
export const PINNED_NODE_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: `${join(ROOT, 'node_modules/.bin')}${delimiter}${process.env['PATH'] ?? ''}`,
};

/** What prepack needs from the checkout. */
const SOURCES = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'README.md',
  'bin',
  'controller',
  // the editor schema, shipped in the package (`make crds` writes it)
  'schema',
];

/** Packs a copy of the sources made in `work`/src; returns the tarball's path (in `work`). */
export async function packPlugctl(work: string): Promise<string> {
  const src = join(work, 'src');
  for (const entry of SOURCES) {
    if (existsSync(join(ROOT, entry))) cpSync(join(ROOT, entry), join(src, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'));
  const packed = await run('npm', ['pack', '--silent', '--pack-destination', work], {
    cwd: src,
    env: PINNED_NODE_ENV,
  });
  return join(work, packed.stdout.trim().split('\n').at(-1)!);
}
