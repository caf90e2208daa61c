// Mastodon STAND-IN streaming server (tests only, NOT Mastodon's streaming API).
// Started like upstream's: `node ./streaming` with PORT/BIND from the systemd unit.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const loadEnvFile = (file) => {
  if (!fs.existsSync(file)) return;
  for (const raw of fs.readFileSync(file, 'utf8').split('\n')) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(raw);
    if (!match || raw.trim().startsWith('#')) continue;
    let value = match[2].trim();
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    if (!(match[1] in process.env)) process.env[match[1]] = value;
  }
};

const environment = process.env.NODE_ENV || 'development';
loadEnvFile(path.resolve(__dirname, '..', `.env.${environment}`));

const port = Number(process.env.PORT || 4000);
const bind = process.env.BIND || '127.0.0.1';
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/api/v1/streaming/health') {
    // Mastodon's streaming server answers its health check with a Content-Type and no
    // Cache-Control (streaming/index.js); upstream's nginx never caches /api/v1/streaming.
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('OK');
    return;
  }
  res.writeHead(404, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ error: 'Not found' }));
});

// Minimal websocket handshake on /api/v1/streaming: sends one text frame and keeps the
// socket open, enough to prove a reverse proxy forwards the upgrade.
server.on('upgrade', (req, socket) => {
  const url = new URL(req.url, 'http://localhost');
  const key = req.headers['sec-websocket-key'];
  if (!url.pathname.startsWith('/api/v1/streaming') || !key) {
    socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    return;
  }
  const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    + `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const payload = Buffer.from(JSON.stringify({ event: 'standin', payload: 'connected' }));
  socket.write(Buffer.concat([Buffer.from([0x81, payload.length]), payload]));
  socket.on('error', () => socket.destroy());
});

server.listen(port, bind, () => {
  console.log(`Mastodon stand-in streaming listening on ${bind}:${port}`);
});

const shutdown = () => server.close(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
