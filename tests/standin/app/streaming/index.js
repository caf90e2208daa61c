// Mastodon STAND-IN streaming server (tests only, NOT Mastodon's streaming API).
// Started like upstream's: `node ./streaming` with PORT/BIND from the systemd unit. Like
// upstream's it reads .env.production, subscribes to Redis channels named `timeline:…` (with
// REDIS_NAMESPACE's prefix) for the streams its websocket clients ask for, and forwards every
// message published there as `{"stream": [...], "event": ..., "payload": "<JSON text>"}`.
// No npm dependencies: a small RESP (Redis protocol) client and websocket framing over `net`.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const net = require('net');
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

// --- Redis: the same variables as upstream's streaming/redis.js -------------------------------

const redisConfig = (() => {
  if (process.env.REDIS_URL) {
    const url = new URL(process.env.REDIS_URL);
    return {
      host: url.hostname || '127.0.0.1',
      port: Number(url.port || 6379),
      user: decodeURIComponent(url.username || '') || null,
      password: url.password ? decodeURIComponent(url.password) : null,
    };
  }
  return {
    host: process.env.REDIS_HOST || 'localhost',
    port: Number(process.env.REDIS_PORT || 6379),
    user: process.env.REDIS_USER || null,
    password: process.env.REDIS_PASSWORD || null,
  };
})();
const redisPrefix = process.env.REDIS_NAMESPACE ? `${process.env.REDIS_NAMESPACE}:` : '';

// Both families of a name such as localhost are tried (Node 18.13+), like a resolver would.
const connectRedis = () => net.createConnection({
  host: redisConfig.host, port: redisConfig.port, autoSelectFamily: true,
});

const encodeCommand = (args) => Buffer.concat([
  Buffer.from(`*${args.length}\r\n`),
  ...args.map((arg) => {
    const bytes = Buffer.from(String(arg));
    return Buffer.concat([Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n')]);
  }),
]);

const authCommand = () => {
  if (!redisConfig.password) return [];
  return [redisConfig.user ? ['AUTH', redisConfig.user, redisConfig.password] : ['AUTH', redisConfig.password]];
};

// One RESP reply from `buffer` at `offset`: {value, next}, or null while it is incomplete.
const parseReply = (buffer, offset = 0) => {
  if (offset >= buffer.length) return null;
  const end = buffer.indexOf('\r\n', offset);
  if (end < 0) return null;
  const type = String.fromCharCode(buffer[offset]);
  const line = buffer.toString('utf8', offset + 1, end);
  const next = end + 2;
  switch (type) {
    case '+': return { value: line, next };
    case '-': return { value: new Error(line), next };
    case ':': return { value: Number(line), next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, next };
      if (buffer.length < next + length + 2) return null;
      return { value: buffer.toString('utf8', next, next + length), next: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next };
      const items = [];
      let position = next;
      for (let i = 0; i < count; i += 1) {
        const item = parseReply(buffer, position);
        if (!item) return null;
        items.push(item.value);
        position = item.next;
      }
      return { value: items, next: position };
    }
    default: throw new Error(`unexpected Redis reply type ${JSON.stringify(type)}`);
  }
};

// Feeds socket data to `onReply` one complete reply at a time.
const replyReader = (onReply) => {
  let buffer = Buffer.alloc(0);
  return (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const reply = parseReply(buffer);
      if (!reply) return;
      buffer = buffer.subarray(reply.next);
      onReply(reply.value);
    }
  };
};

// Is Redis reachable now? A fresh connection that must answer AUTH (when set) and PING.
const redisPing = () => new Promise((resolve) => {
  const socket = connectRedis();
  const commands = [...authCommand(), ['PING']];
  const replies = [];
  let done = false;
  const finish = (ok) => {
    if (done) return;
    done = true;
    socket.destroy();
    resolve(ok);
  };
  socket.setTimeout(2000, () => finish(false));
  socket.on('error', () => finish(false));
  socket.on('close', () => finish(false));
  socket.on('connect', () => socket.write(Buffer.concat(commands.map(encodeCommand))));
  const read = replyReader((reply) => {
    replies.push(reply);
    if (replies.length === commands.length) {
      finish(replies.every((r) => !(r instanceof Error)) && replies[replies.length - 1] === 'PONG');
    }
  });
  socket.on('data', (chunk) => {
    try {
      read(chunk);
    } catch {
      finish(false);
    }
  });
});

// The subscriber connection: one per process, subscribed to the channels some client wants,
// reconnected (and re-subscribed) when Redis goes away.
const listeners = new Map(); // channel -> Set of functions(message)
let subscriber = null;

const connectSubscriber = () => {
  const socket = connectRedis();
  const read = replyReader((reply) => {
    if (reply instanceof Error) {
      console.error(`Redis: ${reply.message}`);
    } else if (Array.isArray(reply) && reply[0] === 'message') {
      for (const listener of listeners.get(reply[1]) || []) listener(reply[2]);
    }
  });
  socket.on('connect', () => {
    const commands = [...authCommand()];
    if (listeners.size > 0) commands.push(['SUBSCRIBE', ...listeners.keys()]);
    if (commands.length > 0) socket.write(Buffer.concat(commands.map(encodeCommand)));
    subscriber = socket;
  });
  socket.on('data', (chunk) => {
    try {
      read(chunk);
    } catch (error) {
      console.error(`Redis: ${error.message}`);
      socket.destroy();
    }
  });
  socket.on('error', (error) => console.error(`Redis subscriber: ${error.message}`));
  socket.on('close', () => {
    if (subscriber === socket) subscriber = null;
    setTimeout(connectSubscriber, 1000);
  });
};

const subscribe = (channel, listener) => {
  if (!listeners.has(channel)) {
    listeners.set(channel, new Set());
    if (subscriber) subscriber.write(encodeCommand(['SUBSCRIBE', channel]));
  }
  listeners.get(channel).add(listener);
};

const unsubscribe = (channel, listener) => {
  const set = listeners.get(channel);
  if (!set) return;
  set.delete(listener);
  if (set.size === 0) {
    listeners.delete(channel);
    if (subscriber) subscriber.write(encodeCommand(['UNSUBSCRIBE', channel]));
  }
};

// --- Streams: the public ones upstream serves without an access token ------------------------

const PUBLIC_STREAMS = {
  public: 'timeline:public',
  'public:media': 'timeline:public:media',
  'public:local': 'timeline:public:local',
  'public:local:media': 'timeline:public:local:media',
  'public:remote': 'timeline:public:remote',
  'public:remote:media': 'timeline:public:remote:media',
};
const AUTHENTICATED_STREAMS = ['user', 'user:notification', 'list', 'direct'];

// {name: [...], channel} for a stream and its parameters, or {status, error} when refused.
const resolveStream = (name, params) => {
  if (PUBLIC_STREAMS[name]) return { name: [name], channel: `${redisPrefix}${PUBLIC_STREAMS[name]}` };
  if (name === 'hashtag' || name === 'hashtag:local') {
    const tag = String(params.tag || '').toLowerCase();
    if (!tag) return { status: 400, error: 'No tag for stream provided' };
    const suffix = name === 'hashtag:local' ? ':local' : '';
    return { name: [name, tag], channel: `${redisPrefix}timeline:hashtag:${tag}${suffix}` };
  }
  if (AUTHENTICATED_STREAMS.includes(name)) return { status: 401, error: 'Missing access token' };
  return { status: 400, error: 'Unknown stream type' };
};

// --- Websocket framing (RFC 6455): text frames out, text/ping/close frames in -----------------

const frame = (opcode, payload) => {
  const length = payload.length;
  let header;
  if (length < 126) {
    header = Buffer.from([0x80 | opcode, length]);
  } else if (length < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 126;
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  return Buffer.concat([header, payload]);
};

// Client frames are masked; returns {opcode, payload, next} or null while incomplete.
const parseFrame = (buffer) => {
  if (buffer.length < 2) return null;
  const opcode = buffer[0] & 0x0f;
  const masked = (buffer[1] & 0x80) !== 0;
  let length = buffer[1] & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buffer.length < 4) return null;
    length = buffer.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return null;
    length = Number(buffer.readBigUInt64BE(2));
    offset = 10;
  }
  const maskLength = masked ? 4 : 0;
  if (buffer.length < offset + maskLength + length) return null;
  const payload = Buffer.from(buffer.subarray(offset + maskLength, offset + maskLength + length));
  if (masked) {
    const mask = buffer.subarray(offset, offset + 4);
    for (let i = 0; i < payload.length; i += 1) payload[i] ^= mask[i % 4];
  }
  return { opcode, payload, next: offset + maskLength + length };
};

const rejectUpgrade = (socket, status, error) => {
  const body = JSON.stringify({ error });
  const reason = http.STATUS_CODES[status] || 'Error';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n`
    + `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
};

const websockets = new Set();

const handleWebsocket = (req, socket) => {
  const url = new URL(req.url, 'http://localhost');
  const key = req.headers['sec-websocket-key'];
  if (!['/api/v1/streaming', '/api/v1/streaming/'].includes(url.pathname) || !key) {
    rejectUpgrade(socket, 400, 'Bad request');
    return;
  }
  const params = Object.fromEntries(url.searchParams);
  const first = params.stream ? resolveStream(params.stream, params) : null;
  if (first && first.error) {
    rejectUpgrade(socket, first.status, first.error);
    return;
  }

  const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    + `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);

  const subscriptions = new Map(); // channel -> listener
  const send = (text) => {
    if (!socket.destroyed) socket.write(frame(0x1, Buffer.from(text)));
  };
  const join = (stream) => {
    if (subscriptions.has(stream.channel)) return;
    const listener = (message) => {
      let parsed;
      try {
        parsed = JSON.parse(message);
      } catch {
        return;
      }
      const payload = typeof parsed.payload === 'object' ? JSON.stringify(parsed.payload) : parsed.payload;
      send(JSON.stringify({ stream: stream.name, event: parsed.event, payload }));
    };
    subscriptions.set(stream.channel, listener);
    subscribe(stream.channel, listener);
  };
  const leave = (channel) => {
    const listener = subscriptions.get(channel);
    if (!listener) return;
    subscriptions.delete(channel);
    unsubscribe(channel, listener);
  };
  if (first) join(first);

  let buffer = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const incoming = parseFrame(buffer);
      if (!incoming) return;
      buffer = buffer.subarray(incoming.next);
      if (incoming.opcode === 0x8) {
        socket.end(frame(0x8, Buffer.alloc(0)));
        return;
      }
      if (incoming.opcode === 0x9) socket.write(frame(0xa, incoming.payload));
      if (incoming.opcode !== 0x1) continue;
      let request;
      try {
        request = JSON.parse(incoming.payload.toString('utf8'));
      } catch {
        continue;
      }
      const stream = resolveStream(String(request.stream || ''), request);
      if (stream.error) {
        send(JSON.stringify({ error: stream.error, status: stream.status }));
      } else if (request.type === 'subscribe') {
        join(stream);
      } else if (request.type === 'unsubscribe') {
        leave(stream.channel);
      }
    }
  });
  const cleanup = () => {
    for (const channel of [...subscriptions.keys()]) leave(channel);
  };
  websockets.add(socket);
  socket.on('close', () => {
    websockets.delete(socket);
    cleanup();
  });
  socket.on('error', () => socket.destroy());
};

// --- HTTP -------------------------------------------------------------------------------------

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/api/v1/streaming/health') {
    // Content-Type and no Cache-Control, as upstream's (streaming/index.js); upstream's nginx
    // never caches /api/v1/streaming. The stand-in answers OK only while Redis answers PING.
    redisPing().then((ok) => {
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' });
      res.end(ok ? 'OK' : 'Redis unavailable');
    });
    return;
  }
  res.writeHead(404, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ error: 'Not found' }));
});

server.on('upgrade', handleWebsocket);

connectSubscriber();
server.listen(port, bind, () => {
  console.log(`Mastodon stand-in streaming listening on ${bind}:${port}`);
});

const shutdown = () => {
  for (const socket of websockets) socket.destroy();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
