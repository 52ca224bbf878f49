/**
 * A loopback TCP proxy for tests of connections that die silently: `blackhole()` stops forwarding on
 * every connection open at that moment while keeping their sockets open (as a NAT or a load balancer
 * that lost its state would), so a client reading a watch sees neither data nor an error. Connections
 * opened afterwards are forwarded as usual.
 */
import { createConnection, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

/** A running proxy. */
export interface TcpProxy {
  /** the port it listens on, on 127.0.0.1 */
  readonly port: number;
  /** connections accepted so far */
  readonly accepted: number;
  /** Stops forwarding on every open connection, leaving them open. */
  blackhole(): void;
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 (a free port) forwarding to 127.0.0.1:`targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    get accepted() {
      return accepted;
    },
    blackhole() {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        // Keep reading so the peers' writes succeed, and throw the bytes away.
        client.removeAllListeners('data').on('data', () => {});
        upstream.removeAllListeners('data').on('data', () => {});
        client.resume();
        upstream.resume();
      }
    },
    async close() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
