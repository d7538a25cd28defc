import http from 'node:http';
import { processRegistry } from './copy-metrics';

/** A worker process's own metrics (its copies) at http://<address>/metrics, for Prometheus to scrape. */
export function serveProcessMetrics(address: string): Promise<http.Server> {
  const [host, port] = address.includes(':') ? [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))] : ['127.0.0.1', Number(address)];
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`VMIGRATE_METRICS_ADDRESS must be host:port (got '${address}')`);
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    processRegistry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': processRegistry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
