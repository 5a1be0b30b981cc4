#!/usr/bin/env node
// Local S3 server for medallion's tests and demo: @20minutes/s3rver 4.0.4
// (verifies SigV4; credentials: access key S3RVER, secret S3RVER).
//
// The package ships no CLI, so this script starts it programmatically.
//
//   NODE_OPTIONS=--openssl-legacy-provider node test/s3/server.js \
//       [--port N] [--directory DIR] [--bucket NAME ...] [--address 127.0.0.1] [--verbose]
//
// Each option may also come from the environment:
//   S3_PORT (default 0 = pick a free port), S3_DIRECTORY (default: a new temp
//   dir, removed on exit), S3_BUCKETS (comma-separated, default "landing"),
//   S3_ADDRESS (loopback only, default 127.0.0.1), S3_VERBOSE=1.
// --bucket may be repeated; if any --bucket is given, S3_BUCKETS is ignored.
//
// When it is ready it prints exactly one line on stdout:
//   S3 listening on http://127.0.0.1:PORT
// and exits with status 0 on SIGTERM or SIGINT.
//
// --openssl-legacy-provider is required: s3rver encrypts ListObjectsV2
// continuation tokens with DES, which OpenSSL 3 only has in its legacy
// provider; without it every truncated (paged) listing answers 500.
//
// One correction to s3rver: it writes an object's file in place while the
// body streams in, so a listing or GET during a large upload sees part of the
// object (a 60 MB file listed at 3 MB). Real S3 makes a PUT or a completed
// multipart upload visible only whole; writeObjectsWhole() makes this server
// do the same, so a test never ingests an object that S3 would not serve.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Transform } = require('stream');
const { pipeline } = require('stream/promises');

function usage(msg) {
  if (msg) process.stderr.write(`server.js: ${msg}\n`);
  process.stderr.write(
    'usage: server.js [--port N] [--directory DIR] [--bucket NAME ...] ' +
      '[--address 127.0.0.1] [--verbose]\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const env = process.env;
  const opts = {
    port: env.S3_PORT !== undefined && env.S3_PORT !== '' ? env.S3_PORT : '0',
    directory: env.S3_DIRECTORY || '',
    address: env.S3_ADDRESS || '127.0.0.1',
    verbose: env.S3_VERBOSE === '1',
    buckets: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--port':
      case '-p':
        opts.port = next();
        break;
      case '--directory':
      case '-d':
        opts.directory = next();
        break;
      case '--address':
      case '-a':
        opts.address = next();
        break;
      case '--bucket':
      case '-b':
        (opts.buckets = opts.buckets || []).push(next());
        break;
      case '--verbose':
      case '-v':
        opts.verbose = true;
        break;
      case '--help':
      case '-h':
        usage();
        break;
      default:
        usage(`unknown argument ${a}`);
    }
  }
  if (opts.buckets === null) {
    opts.buckets = (env.S3_BUCKETS !== undefined ? env.S3_BUCKETS : 'landing')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
  }
  if (!/^\d+$/.test(String(opts.port)) || Number(opts.port) > 65535)
    usage(`bad port ${opts.port}`);
  opts.port = Number(opts.port);
  // Tests must never listen beyond this machine.
  if (!/^127\.\d+\.\d+\.\d+$/.test(opts.address))
    usage(`address must be a loopback IPv4 address (127.x.x.x), not ${opts.address}`);
  for (const b of opts.buckets) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(b)) usage(`bad bucket name ${b}`);
  }
  return opts;
}

function checkLegacyProvider() {
  try {
    const c = crypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    c.update('x');
    c.final();
  } catch (e) {
    process.stderr.write(
      'server.js: DES is unavailable (paged listings would fail with 500); ' +
        'run node with NODE_OPTIONS=--openssl-legacy-provider\n',
    );
    process.exit(2);
  }
}

// Replaces FilesystemStore.putContent (object bodies and multipart parts):
// the body goes to a temporary file beside the object, renamed over it once
// complete. Listings only see names ending in "._S3rver_object", so the
// temporary file is never listed. Returns [length, md5 hex] as the original.
function writeObjectsWhole() {
  const FilesystemStore = require('@20minutes/s3rver/lib/stores/filesystem');
  let uploads = 0;
  FilesystemStore.prototype.putContent = async function (objectPath, content) {
    const temporaryPath = `${objectPath}.${process.pid}.${++uploads}.partial`;
    const md5 = crypto.createHash('md5');
    let length = 0;
    try {
      if (Buffer.isBuffer(content)) {
        await fs.promises.writeFile(temporaryPath, content);
        md5.update(content);
        length = content.length;
      } else {
        await pipeline(
          content,
          new Transform({
            transform(chunk, encoding, callback) {
              md5.update(chunk, encoding);
              length += chunk.length;
              callback(null, chunk);
            },
          }),
          fs.createWriteStream(temporaryPath),
        );
      }
      await fs.promises.rename(temporaryPath, objectPath);
    } catch (err) {
      await fs.promises.rm(temporaryPath, { force: true });
      throw err;
    }
    return [length, md5.digest('hex')];
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  checkLegacyProvider();
  writeObjectsWhole();

  let ownDir = false;
  if (!opts.directory) {
    opts.directory = fs.mkdtempSync(path.join(os.tmpdir(), 'medallion-s3-'));
    ownDir = true;
  } else {
    fs.mkdirSync(opts.directory, { recursive: true });
  }

  const S3rver = require('@20minutes/s3rver');
  const server = new S3rver({
    address: opts.address,
    port: opts.port,
    directory: opts.directory,
    silent: !opts.verbose,
    // Tests talk to it as http://127.0.0.1:PORT (path-style); never treat a
    // Host name as a bucket.
    vhostBuckets: false,
    configureBuckets: opts.buckets.map((name) => ({ name, configs: [] })),
  });

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    // A keep-alive client could hold close() open: cap the wait.
    const timer = setTimeout(() => process.exit(0), 2000);
    timer.unref();
    try {
      if (server.httpServer && server.httpServer.closeAllConnections)
        server.httpServer.closeAllConnections();
      await server.close();
    } catch (e) {
      // already closed
    }
    if (ownDir) fs.rmSync(opts.directory, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const addr = await server.run();
  process.stdout.write(`S3 listening on http://${addr.address}:${addr.port}\n`);
}

main().catch((err) => {
  process.stderr.write(`server.js: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
