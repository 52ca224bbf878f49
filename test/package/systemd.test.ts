// manifests/systemd: the unit and its drop-ins pass `systemd-analyze verify` with nothing to say
// (warnings count), and the example /etc/plugctl layout they name loads. The unit's ExecStart names
// where `npm install -g` puts plugctl (/usr/local/bin); verify checks that the command is an
// executable, so the copy verified here points at this checkout's bin/plugctl.js instead.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseLabelsFile } from '../../controller/api/labels.ts';
import { loadDocuments } from '../../controller/api/load.ts';
import { describeWith } from '../prerequisites.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SYSTEMD = join(ROOT, 'manifests/systemd');
const INSTALLED_BIN = '/usr/local/bin/plugctl';

/** `systemd-analyze verify` of plugctl.service with `dropIns`: its exit code and all it printed. */
async function verify(dropIns: string[]): Promise<{ code: number; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'plugctl-systemd-'));
  try {
    const unit = join(dir, 'plugctl.service');
    const local = (text: string): string => text.replaceAll(INSTALLED_BIN, join(ROOT, 'bin/plugctl.js'));
    writeFileSync(unit, local(readFileSync(join(SYSTEMD, 'plugctl.service'), 'utf8')));
    mkdirSync(`${unit}.d`);
    for (const dropIn of dropIns) {
      writeFileSync(join(`${unit}.d`, dropIn), local(readFileSync(join(SYSTEMD, dropIn), 'utf8')));
    }
    return await run('systemd-analyze', ['verify', '--man=no', unit], { cwd: dir }).then(
      ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({
        code: error.code,
        output: error.stdout + error.stderr,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** systemd's version number (252 on Debian 12). */
async function systemdVersion(): Promise<number> {
  const { stdout } = await run('systemd-analyze', ['--version']);
  return Number(/^systemd (\d+)/.exec(stdout)?.[1]);
}

describeWith('manifests/systemd', { needs: ['linux', 'systemd-analyze', 'dockerd'] }, () => {
  it('plugctl.service verifies clean', async () => {
    assert.deepEqual(await verify([]), { code: 0, output: '' });
  });

  it('with docker-store.conf (non-root, sandboxed) it verifies clean', async () => {
    assert.deepEqual(await verify(['docker-store.conf']), { code: 0, output: '' });
  });

  it('restart-backoff.conf verifies clean where systemd has RestartSteps= (>= 254), and is only ignored before', async () => {
    const result = await verify(['restart-backoff.conf']);
    if ((await systemdVersion()) >= 254) assert.deepEqual(result, { code: 0, output: '' });
    else {
      assert.equal(result.code, 0);
      assert.match(result.output, /Unknown key '?RestartSteps'?/);
      assert.match(result.output, /Unknown key '?RestartMaxDelaySec'?/);
    }
  });

  it('restarts on failure, never gives up, and leaves the plugins running when plugctl stops', async () => {
    const unit = await readFile(join(SYSTEMD, 'plugctl.service'), 'utf8');
    for (const line of [
      'Restart=on-failure',
      'RestartSec=5s',
      'StartLimitIntervalSec=0',
      'KillMode=process',
    ]) {
      assert.match(unit, new RegExp(`^${line}$`, 'm'));
    }
  });

  it('the example /etc/plugctl layout the unit names loads: documents and labels', async () => {
    const example = join(ROOT, 'examples/etc-plugctl');
    const unit = await readFile(join(SYSTEMD, 'plugctl.service'), 'utf8');
    assert.match(unit, /--labels-file \/etc\/plugctl\/labels run -f \/etc\/plugctl\/plugins\.d /);
    const loaded = await loadDocuments([join(example, 'plugins.d')]);
    assert.deepEqual(loaded.errors, []);
    assert.deepEqual(
      loaded.documents.map((d) => d.doc.metadata.name),
      ['sshfs'],
    );
    const labels = parseLabelsFile(await readFile(join(example, 'labels'), 'utf8'), 'labels');
    assert.deepEqual(labels, { role: 'storage', zone: 'rack-1' });
  });
});
