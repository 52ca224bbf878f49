// Secret-valued settings: the value never becomes text by accident, the planner compares by salted
// hash, a secret that cannot be read blocks only its plugin, and nothing printable carries it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { SecretValue, saltedHash, revealSetting } from '../../../controller/api/secrets.ts';
import { fileSecretResolver } from '../../../controller/sources/secret-files.ts';
import { SecretKeeper, loadSalt, secretHashes, SALT_FILE } from '../../../controller/reconcile/secrets.ts';
import { plan } from '../../../controller/reconcile/plan.ts';
import { describeAction } from '../../../controller/cli/render.ts';
import { PlugctlError } from '../../../controller/errors.ts';
import { validateDocument } from '../../../controller/api/validate.ts';
import { desired, effective, installed, inventory, noFacts, opts, NAME } from './fixtures.ts';

const PLAIN = 's3cr3t-Value-9f2c';
const SALT = Buffer.alloc(32, 7);

async function tempDir(): Promise<{ dir: string; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'plugctl-secrets-'));
  return { dir, [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }) };
}

describe('SecretValue', () => {
  test('every accidental rendering shows the label, reveal() the value', () => {
    const secret = new SecretValue(PLAIN, SALT);
    const texts = [
      String(secret),
      `${secret}`,
      JSON.stringify({ secret }),
      inspect(secret),
      inspect({ nested: [secret] }, { depth: 5 }),
      [secret].join(' '),
    ];
    for (const text of texts) assert.ok(!text.includes(PLAIN), text);
    assert.equal(secret.reveal(), PLAIN);
    assert.equal(revealSetting(secret), PLAIN);
  });

  test('matches() compares by salted hash; another salt gives another hash', () => {
    const secret = new SecretValue(PLAIN, SALT);
    assert.ok(secret.matches(PLAIN));
    assert.ok(!secret.matches(`${PLAIN}x`));
    assert.equal(secret.hash, saltedHash(SALT, PLAIN));
    assert.notEqual(secret.hash, saltedHash(Buffer.alloc(32, 8), PLAIN));
    assert.match(secret.hash, /^hmac-sha256:[0-9a-f]{64}$/);
  });

  test('derive() keeps the text hidden under the new label', () => {
    const setting = new SecretValue(PLAIN, SALT).derive((p) => `TOKEN=${p}`, 'TOKEN=<secret>');
    assert.equal(String(setting), 'TOKEN=<secret>');
    assert.equal(setting.reveal(), `TOKEN=${PLAIN}`);
  });
});

describe('fileSecretResolver', () => {
  test('reads the file and drops one trailing newline', async () => {
    await using t = await tempDir();
    const file = join(t.dir, 'token');
    await writeFile(file, `${PLAIN}\n`);
    assert.equal(await fileSecretResolver({ allowedDirs: [t.dir] }).resolve({ file }), PLAIN);
    await writeFile(file, `${PLAIN}\n\n`);
    assert.equal(await fileSecretResolver({ allowedDirs: [t.dir] }).resolve({ file }), `${PLAIN}\n`);
  });

  test('a missing, unreadable, oversized or directory source is SECRET_UNAVAILABLE naming the path', async () => {
    await using t = await tempDir();
    const big = join(t.dir, 'big');
    await writeFile(big, 'x'.repeat(100));
    const cases: [string, RegExp][] = [
      [join(t.dir, 'absent'), /no such file/],
      [t.dir, /not a regular file|directory/],
    ];
    for (const [file, why] of cases) {
      await assert.rejects(
        fileSecretResolver({ allowedDirs: [t.dir] }).resolve({ file }),
        (error: unknown) => {
          assert.ok(error instanceof PlugctlError);
          assert.equal(error.code, 'SECRET_UNAVAILABLE');
          assert.match(error.message, why);
          assert.ok(error.message.includes(file));
          return true;
        },
      );
    }
    await assert.rejects(
      fileSecretResolver({ maxBytes: 10, allowedDirs: [t.dir] }).resolve({ file: big }),
      (error: unknown) => error instanceof PlugctlError && /limit/.test(error.message),
    );
    if (process.getuid?.() !== 0) {
      const locked = join(t.dir, 'locked');
      await writeFile(locked, PLAIN);
      await chmod(locked, 0o000);
      await assert.rejects(
        fileSecretResolver({ allowedDirs: [t.dir] }).resolve({ file: locked }),
        /permission denied/,
      );
    }
  });

  test('a file outside the allowed directories, or a symlink leading out, is SECRET_PATH_FORBIDDEN', async () => {
    await using t = await tempDir();
    const allowed = join(t.dir, 'secrets');
    await mkdir(allowed);
    await writeFile(join(t.dir, 'outside'), PLAIN);
    await symlink(join(t.dir, 'outside'), join(allowed, 'link'));
    await writeFile(join(allowed, 'inside'), PLAIN);
    const resolver = fileSecretResolver({ allowedDirs: [allowed] });
    assert.equal(await resolver.resolve({ file: join(allowed, 'inside') }), PLAIN);
    for (const file of [
      join(t.dir, 'outside'),
      join(allowed, 'link'),
      join(allowed, '..', 'outside'),
      '/etc/passwd',
    ]) {
      await assert.rejects(resolver.resolve({ file }), (error: unknown) => {
        assert.ok(error instanceof PlugctlError);
        assert.equal(error.code, 'SECRET_PATH_FORBIDDEN');
        assert.equal(error.kind, 'stalled');
        assert.ok(!error.message.includes(PLAIN));
        return true;
      });
    }
    // the default allows only /etc/plugctl/secrets
    await assert.rejects(fileSecretResolver().resolve({ file: join(allowed, 'inside') }), /--secrets-dir/);
  });

  test('secretKeyRef is refused in file mode with SECRET_SOURCE_UNSUPPORTED', async () => {
    await assert.rejects(
      fileSecretResolver().resolve({ secretKeyRef: { name: 'tokens', key: 'api' } }),
      (error: unknown) =>
        error instanceof PlugctlError &&
        error.code === 'SECRET_SOURCE_UNSUPPORTED' &&
        /Kubernetes mode/.test(error.message) &&
        error.kind === 'stalled',
    );
  });
});

describe('the state directory salt', () => {
  test('is created once, mode 0600, and read back the same', async () => {
    await using t = await tempDir();
    const [a, b] = await Promise.all([loadSalt(t.dir), loadSalt(t.dir)]);
    assert.deepEqual(Buffer.from(a), Buffer.from(b));
    assert.deepEqual(Buffer.from(await loadSalt(t.dir)), Buffer.from(a));
    assert.equal((await stat(join(t.dir, SALT_FILE))).mode & 0o777, 0o600);
    assert.equal(a.byteLength, 32);
  });

  test('a corrupt salt is STATE_CORRUPT, not silently replaced', async () => {
    await using t = await tempDir();
    await writeFile(join(t.dir, SALT_FILE), 'nope\n');
    await assert.rejects(
      loadSalt(t.dir),
      (e: unknown) => e instanceof PlugctlError && e.code === 'STATE_CORRUPT',
    );
  });
});

describe('SecretKeeper and the planner', () => {
  test('a resolved secret that differs plans set with <secret, changed>, and no printable text has it', async () => {
    await using t = await tempDir();
    const file = join(t.dir, 'token');
    await writeFile(file, PLAIN);
    const keeper = new SecretKeeper(join(t.dir, 'state'), fileSecretResolver({ allowedDirs: [t.dir] }));
    const d = await keeper.resolve(desired({ settings: { env: {} }, secrets: { GREETING: { file } } }));
    assert.equal(d.secretError, undefined);
    const [p] = plan([d], [installed()], inventory([NAME]), noFacts(), opts());
    assert.equal(p!.outcome, 'configure');
    const set = p!.actions.find((a) => a.type === 'set');
    assert.ok(set !== undefined && set.type === 'set');
    assert.match(set.reason, /env GREETING <secret, changed>/);
    const printed = [...p!.actions.map(describeAction), JSON.stringify(p), inspect(p, { depth: 10 })].join(
      '\n',
    );
    assert.ok(!printed.includes(PLAIN), printed);
    assert.deepEqual(set.changes?.map(revealSetting), [`GREETING=${PLAIN}`]);
    const hashes = secretHashes(d);
    assert.match(hashes?.['GREETING'] ?? '', /^hmac-sha256:/);
    const salt = await readFile(join(t.dir, 'state', SALT_FILE), 'utf8');
    assert.ok(!salt.includes(PLAIN));
  });

  test('an installed value equal to the secret is unchanged', async () => {
    await using t = await tempDir();
    const file = join(t.dir, 'token');
    await writeFile(file, `${PLAIN}\n`);
    const keeper = new SecretKeeper(join(t.dir, 'state'), fileSecretResolver({ allowedDirs: [t.dir] }));
    const d = await keeper.resolve(desired({ secrets: { GREETING: { file } } }));
    const plugin = installed({ settings: effective({ env: { GREETING: PLAIN, DEBUG: '0' } }) });
    const [p] = plan([d], [plugin], inventory([NAME]), noFacts(), opts());
    assert.equal(p!.outcome, 'unchanged');
  });

  test('a secret that cannot be read blocks its plugin alone, and an unresolved one blocks too', async () => {
    await using t = await tempDir();
    const keeper = new SecretKeeper(join(t.dir, 'state'), fileSecretResolver({ allowedDirs: [t.dir] }));
    const broken = await keeper.resolve(desired({ secrets: { GREETING: { file: join(t.dir, 'absent') } } }));
    const other = desired({ key: 'other', name: 'other:latest' });
    const plans = plan([broken, other], [], inventory([]), noFacts(), opts());
    const blockedAction = plans[0]!.actions[0]!;
    assert.equal(plans[0]!.outcome, 'blocked');
    assert.ok(blockedAction.type === 'blocked' && blockedAction.code === 'SECRET_UNAVAILABLE');
    assert.match(blockedAction.reason, /spec\.settings\.env\.GREETING: cannot read the secret file/);
    assert.equal(plans[1]!.outcome, 'blocked'); // FACTS_MISSING: not looked up in this pure test
    assert.notEqual((plans[1]!.actions[0] as { code?: string }).code, 'SECRET_UNAVAILABLE');

    const unresolved = desired({ secrets: { GREETING: { file: '/x' } } });
    const [p] = plan([unresolved], [installed()], inventory([NAME]), noFacts(), opts());
    assert.ok(p!.actions[0]!.type === 'blocked' && /not been read yet/.test(p!.actions[0]!.reason));
  });

  test('secretKeyRef in file mode is a stalled SECRET_SOURCE_UNSUPPORTED', async () => {
    await using t = await tempDir();
    const keeper = new SecretKeeper(join(t.dir, 'state'), fileSecretResolver({ allowedDirs: [t.dir] }));
    const d = await keeper.resolve(
      desired({ secrets: { GREETING: { secretKeyRef: { name: 's', key: 'k' } } } }),
    );
    const [p] = plan([d], [installed()], inventory([NAME]), noFacts(), opts());
    const a = p!.actions[0]!;
    assert.ok(a.type === 'blocked' && a.code === 'SECRET_SOURCE_UNSUPPORTED' && a.kind === 'stalled');
  });
});

describe('the schema', () => {
  const doc = (env: unknown): unknown => ({
    apiVersion: 'plugctl.dev/v1alpha1',
    kind: 'DockerPlugin',
    metadata: { name: 'vol' },
    spec: { remote: 'acme/vol:1.0', settings: { env } },
  });
  test('accepts strings, valueFrom.file and valueFrom.secretKeyRef', () => {
    const result = validateDocument(
      doc({
        A: '1',
        B: { valueFrom: { file: '/etc/x' } },
        C: { valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
      }),
    );
    assert.deepEqual(result.ok ? [] : result.issues, []);
  });
  test('refuses both sources, none, a relative path and other shapes', () => {
    for (const env of [
      { A: { valueFrom: { file: '/x', secretKeyRef: { name: 's', key: 'k' } } } },
      { A: { valueFrom: {} } },
      { A: { valueFrom: { file: 'relative' } } },
      { A: 1 },
      { A: { value: 'x' } },
    ]) {
      const result = validateDocument(doc(env));
      assert.ok(!result.ok, JSON.stringify(env));
    }
  });
});
