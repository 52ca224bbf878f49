import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderVersion } from '../../../controller/cli/version.ts';
import { packageVersion } from '../../../controller/cli/package-version.ts';
import { engineHazards } from '../../../controller/store/docker/engine-version.ts';
import { readFileSync } from 'node:fs';

test("packageVersion is package.json's version", () => {
  const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  assert.equal(packageVersion(), manifest.version);
});

test('the text form names the engine, both API versions and every hazard with its fix', () => {
  const text = renderVersion(
    {
      plugctl: { version: '1.2.3', node: '24.21.0' },
      store: 'docker',
      engine: {
        address: 'unix:///run/docker.sock',
        reachable: true,
        version: '20.10.24+dfsg1',
        apiVersion: '1.41',
        negotiatedApiVersion: '1.41',
        hazards: engineHazards('20.10.24+dfsg1'),
      },
    },
    '/var/lib/plugctl/plugins',
  );
  assert.match(text, /^plugctl: +1\.2\.3$/m);
  assert.match(text, /^Engine: +20\.10\.24\+dfsg1$/m);
  assert.match(text, /^API version: +1\.41 \(plugctl uses 1\.41\)$/m);
  assert.match(text, /^ {2}- digest-references \(fixed in 25\.0\.4\): /m);
  assert.match(text, /^ {2}- privilege-validation \(fixed in 29\.3\.1\): /m);
});

test('the text form of the embedded store and of an engine that does not answer', () => {
  const plugctl = { version: '1.2.3', node: '24.21.0' };
  assert.match(
    renderVersion({ plugctl, store: 'embedded' }, '/r'),
    /^Store: +embedded \(\/r\); no Docker engine is used$/m,
  );
  const down = renderVersion(
    {
      plugctl,
      store: 'docker',
      engine: {
        address: 'unix:///x',
        reachable: false,
        error: { code: 'ENGINE_UNREACHABLE', message: 'no' },
      },
    },
    '/r',
  );
  assert.match(down, /^Engine: +not reachable: no \[ENGINE_UNREACHABLE\]$/m);
});
