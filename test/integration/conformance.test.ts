/**
 * The store conformance suite (test/conformance/scenarios.ts) against both stores, in the real
 * environment of test/env/plugin-env.sh: the docker store on the private dockerd, the embedded
 * store running plugins with real runc and pulling from the same loopback registry
 * (127.0.0.1:5000, plain http as for every loopback registry).
 */
import { connectDockerStore } from '../../controller/store/docker/store.ts';
import { openTempEmbeddedStore } from '../conformance/embedded.ts';
import { defineStoreConformance } from '../conformance/scenarios.ts';
import { describeIntegration, useEnv } from './harness.ts';

describeIntegration('store conformance (real dockerd, real runc)', () => {
  const env = useEnv();

  defineStoreConformance('docker', async () => {
    // no client configuration: a credential helper of the user is never consulted
    const store = await connectDockerStore({ host: env().dockerHost, env: { HOME: '/nonexistent' } });
    return {
      store,
      registry: env().registry,
      // dockerd runs every managed plugin with its sockets in /run/docker/plugins/<id>
      socketDir: (id) => `/run/docker/plugins/${id}`,
      cleanup: () => store.close(),
    };
  });

  defineStoreConformance('embedded', async () => {
    const embedded = await openTempEmbeddedStore('conformance');
    return {
      store: embedded.store,
      registry: env().registry,
      socketDir: embedded.socketDir,
      cleanup: embedded.cleanup,
    };
  });
});
