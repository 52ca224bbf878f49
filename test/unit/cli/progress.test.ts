// The progress renderer of apply: bars with bytes and speed on a pseudo-terminal (script(1) gives
// the driver a real tty), one line per step on a pipe or with --progress=plain, nothing with -q.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveMode } from '../../../controller/cli/progress.ts';

const DRIVER = fileURLToPath(new URL('./fixtures/progress-driver.ts', import.meta.url));

function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ out: string; err: string }> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { env: { ...process.env, ...env } }, (error, out, err) =>
      error === null ? resolve({ out, err }) : reject(new Error(`${error.message}\n${err}`)),
    ),
  );
}

test('auto means bars on a terminal, plain lines elsewhere and on a dumb terminal', () => {
  assert.equal(resolveMode('auto', { stream: { isTTY: true } as NodeJS.WriteStream, env: {} }), 'tty');
  assert.equal(
    resolveMode('auto', { stream: { isTTY: true } as NodeJS.WriteStream, env: { TERM: 'dumb' } }),
    'plain',
  );
  assert.equal(resolveMode('auto', { stream: {} as NodeJS.WriteStream, env: {} }), 'plain');
  assert.equal(resolveMode('quiet', { stream: { isTTY: true } as NodeJS.WriteStream, env: {} }), 'quiet');
});

test('not a terminal: one line per step and per layer, with sizes and speed, never a redraw', async () => {
  const { out, err } = await run(process.execPath, [DRIVER, 'auto']);
  assert.equal(out, 'result: mode plain, 0 listed\n', 'reads pass through the wrapper');
  const lines = err.trimEnd().split('\n');
  assert.equal(lines[0], 'vol:latest: pulling 127.0.0.1:5000/test/vol:1.0');
  assert.equal(lines[1], 'vol:latest: layer 111111111111: downloading (30 MB)');
  assert.match(
    lines[2]!,
    /^vol:latest: layer 111111111111: pull complete, 30 MB in \d+ms \([\d.]+ [kMG]B\/s\)$/,
  );
  assert.equal(lines[3], 'vol:latest: layer 222222222222: downloading (2 MB)');
  assert.match(lines[4]!, /^vol:latest: layer 222222222222: pull complete, 2 MB in /);
  assert.match(lines[5]!, /^vol:latest: pulled in \d+ms$/);
  assert.equal(lines[6], 'vol:latest: enabling');
  assert.match(lines[7]!, /^vol:latest: enabled in /);
  assert.equal(lines.length, 8);
  assert.ok(!err.includes('\r') && !err.includes('\u001b'), 'no carriage returns or escape sequences');
});

test('-q: only the results', async () => {
  const { out, err } = await run(process.execPath, [DRIVER, 'quiet']);
  assert.equal(out, 'result: mode quiet, 0 listed\n');
  assert.equal(err, '');
});

test(
  'on a pseudo-terminal: a bar per layer with bytes and speed, redrawn in place',
  { skip: !existsSync('/usr/bin/script') && 'script(1) (util-linux) is not installed' },
  async () => {
    // script runs the driver on a new pty and copies everything it draws to its own stdout
    const { out } = await run(
      'script',
      ['-qec', `stty cols 120; ${process.execPath} ${DRIVER} auto`, '/dev/null'],
      {
        TERM: 'xterm',
        COLUMNS: '120',
      },
    );
    assert.match(out, /result: mode tty, 0 listed/);
    assert.match(
      out,
      /vol:latest: pulling 127\.0\.0\.1:5000\/test\/vol:1\.0/,
      'steps are printed above the bars',
    );
    assert.match(out, /vol:latest: enabled in /);
    assert.match(
      out,
      /vol:latest 111111111111 Pull complete\s+\[====================\] 30 MB\/30 MB [\d.]+ [kMG]B\/s/,
    );
    assert.match(out, /vol:latest 222222222222 Pull complete\s+\[====================\] 2 MB\/2 MB/);
    assert.match(out, /vol:latest 111111111111 Downloading\s+\[====>\s+\] 7\.5 MB\/30 MB/, 'a bar part way');
    assert.ok(out.includes('\u001b[1A'), 'redrawn in place: the cursor moves up');
  },
);
