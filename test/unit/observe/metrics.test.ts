import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMetrics, recordDockerRequest } from '../../../controller/observe/metrics.ts';
import { parseListen } from '../../../controller/observe/health.ts';

test('engine request paths are templated so labels stay bounded', async () => {
  const m = createMetrics();
  recordDockerRequest(m, 'GET', '/plugins', 200);
  recordDockerRequest(m, 'GET', '/plugins/a:latest/json', 200);
  recordDockerRequest(m, 'GET', '/plugins/127.0.0.1:5000/test/vol:1.0/json', 404);
  recordDockerRequest(m, 'POST', '/plugins/pull', 'ENGINE_UNREACHABLE');
  recordDockerRequest(m, 'DELETE', '/plugins/b:latest', 200);
  const text = await m.registry.metrics();
  assert.match(text, /path="\/plugins\/\{name\}\/json",outcome="200"\} 1/);
  assert.match(text, /path="\/plugins\/\{name\}\/json",outcome="404"\} 1/);
  assert.match(text, /method="DELETE",path="\/plugins\/\{name\}",outcome="200"\} 1/);
  assert.match(text, /plugctl_docker_api_errors_total\{code="404"\} 1/);
  assert.match(text, /plugctl_docker_api_errors_total\{code="ENGINE_UNREACHABLE"\} 1/);
  assert.doesNotMatch(text, /vol:1\.0/);
});

test('parseListen', () => {
  assert.deepEqual(parseListen('127.0.0.1:9365'), { host: '127.0.0.1', port: 9365 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.throws(() => parseListen('9365'), /expected host:port/);
});
