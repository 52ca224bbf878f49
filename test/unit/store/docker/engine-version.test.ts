import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareApiVersions, negotiateApiVersion } from '../../../../controller/store/docker/client.ts';
import {
  compareEngineVersions,
  engineHazards,
  parseEngineVersion,
} from '../../../../controller/store/docker/engine-version.ts';

test('engine versions in the forms engines write them parse', () => {
  assert.deepEqual(parseEngineVersion('25.0'), { major: 25, minor: 0, patch: 0, prerelease: false });
  assert.deepEqual(parseEngineVersion('v26.1.0-rc1'), { major: 26, minor: 1, patch: 0, prerelease: true });
  assert.deepEqual(parseEngineVersion('17.06.2-ce'), { major: 17, minor: 6, patch: 2, prerelease: false });
  assert.deepEqual(parseEngineVersion('20.10.24+dfsg1~deb12u1'), {
    major: 20,
    minor: 10,
    patch: 24,
    prerelease: false,
  });
  assert.equal(parseEngineVersion('dev'), undefined);
  assert.equal(parseEngineVersion('master-dockerproject-2024-01-01'), undefined);
});

test('engine versions order as semver, unknown ones oldest', () => {
  assert.ok(compareEngineVersions('25.0', '25.0.4') < 0);
  assert.ok(compareEngineVersions('29.3.1-beta.1', '29.3.1') < 0);
  assert.ok(compareEngineVersions('100.0.0', '29.3.1') > 0);
  assert.ok(compareEngineVersions('unknown', '1.0.0') < 0);
});

test('hazards: digest references before 25.0.4, the first privilege skipped before 29.3.1', () => {
  const ids = (version: string): string[] => engineHazards(version).map((h) => h.id);
  assert.deepEqual(ids('20.10.24+dfsg1'), ['digest-references', 'privilege-validation']);
  assert.deepEqual(ids('25.0.3'), ['digest-references', 'privilege-validation']);
  assert.deepEqual(ids('25.0.4'), ['privilege-validation']);
  assert.deepEqual(ids('29.3.0'), ['privilege-validation']);
  assert.deepEqual(ids('29.3.1-rc.1'), ['privilege-validation']);
  assert.deepEqual(ids('29.3.1'), []);
  assert.deepEqual(ids('30.0.0'), []);
  // an engine of unknown vintage gets every hazard: the safe side
  assert.deepEqual(ids('dev'), ['digest-references', 'privilege-validation']);
  for (const hazard of engineHazards('1.0.0')) assert.match(hazard.summary, /plugctl/);
});

test('API versions compare as numbers, anything else as the oldest', () => {
  assert.ok(compareApiVersions('1.9', '1.25') < 0);
  assert.ok(compareApiVersions('1.41', '1.25') > 0);
  assert.equal(compareApiVersions('1.41', '1.41'), 0);
  assert.ok(compareApiVersions('x', '1.0') < 0);
  assert.equal(negotiateApiVersion('1.47'), '1.41');
  assert.equal(negotiateApiVersion('1.40'), '1.40');
});
