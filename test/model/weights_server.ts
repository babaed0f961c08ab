/**
 * A local HTTP server on 127.0.0.1 for the download tests (never the internet): serves a file
 * under any name, or fails in chosen ways, by the first path segment:
 *   /ok/<name>      the file, with Content-Length
 *   /chunked/<name> the file without Content-Length
 *   /other/<name>   other bytes (a checksum mismatch)
 *   /html/<name>    a web page instead of the file
 *   /error/<name>   HTTP 500
 *   /cut/<name>     Content-Length of the whole file, half of it, then the connection is destroyed
 *   /stall/<name>   headers, a few bytes, then nothing (an idle timeout)
 *   /huge/<name>    announces 1 TB
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface WeightsServer {
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** Paths requested, in order. */
  requests: string[];
  close(): Promise<void>;
}

export async function startWeightsServer(body: Uint8Array): Promise<WeightsServer> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const mode = (req.url ?? '').split('/')[1];
    switch (mode) {
      case 'ok':
        res.writeHead(200, { 'content-length': body.byteLength, 'content-type': 'application/octet-stream' });
        res.end(body);
        return;
      case 'chunked':
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write(body.subarray(0, 100));
        res.end(body.subarray(100));
        return;
      case 'other': {
        const other = Uint8Array.from(body);
        other[other.length - 1] ^= 0xff;
        res.writeHead(200, { 'content-length': other.byteLength });
        res.end(other);
        return;
      }
      case 'html':
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body>Sign in to download</body></html>');
        return;
      case 'error':
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('boom');
        return;
      case 'cut':
        res.writeHead(200, { 'content-length': body.byteLength });
        res.write(body.subarray(0, body.byteLength >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      case 'stall':
        res.writeHead(200, { 'content-length': body.byteLength });
        res.write(body.subarray(0, 10));
        return;
      case 'huge':
        res.writeHead(200, { 'content-length': String(1e12) });
        res.write(body.subarray(0, 10));
        return;
      default:
        res.writeHead(404);
        res.end();
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
