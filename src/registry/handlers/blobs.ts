// /v2/<name>/blobs/<digest> — HEAD, GET (with Range), DELETE.
import { pipeline } from 'node:stream/promises';
import { parseDigest } from '../../oci/index.js';
import { RegistryError } from '../errors.js';
import { parseBlobRange, sendEmpty, type Handler } from '../http.js';

export const getBlob: Handler = async (ctx) => {
  const digest = parseDigest(ctx.params[0]!);
  const { size } = await ctx.service.statBlob(ctx.repo, digest);
  const range = parseBlobRange(ctx.req.headers.range, size);
  const { res } = ctx;
  res.setHeader('Docker-Content-Digest', digest.text);
  res.setHeader('ETag', `"${digest.text}"`);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Content-Type', 'application/octet-stream');
  if (range === 'unsatisfiable') {
    throw new RegistryError('RANGE_INVALID', { headers: { 'Content-Range': `bytes */${size}` } });
  }
  if (ctx.method === 'HEAD') {
    res.statusCode = 200;
    res.setHeader('Content-Length', size);
    res.end();
    return;
  }
  // statBlob above checked the link: open the bytes directly (one metadata lookup per request).
  const stream = await ctx.service.blobs.open(digest, range);
  if (range) {
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
    res.setHeader('Content-Length', range.end - range.start + 1);
  } else {
    res.statusCode = 200;
    res.setHeader('Content-Length', size);
  }
  await pipeline(stream, res);
};

export const deleteBlob: Handler = async (ctx) => {
  const digest = parseDigest(ctx.params[0]!);
  await ctx.service.deleteBlob(ctx.repo, digest);
  sendEmpty(ctx.res, 202, { 'Docker-Content-Digest': digest.text });
};
