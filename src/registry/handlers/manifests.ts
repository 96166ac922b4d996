// /v2/<name>/manifests/<reference> — GET, HEAD, PUT, DELETE by tag or digest.
import { RegistryError } from '../errors.js';
import { readSmallBody, sendEmpty, type Handler } from '../http.js';
import { parseManifestRef } from '../service.js';

export const getManifest: Handler = async (ctx) => {
  const ref = parseManifestRef(ctx.params[0]!);
  const { res } = ctx;
  if (ctx.method === 'HEAD') {
    const m = await ctx.service.resolveManifest(ctx.repo, ref);
    res.statusCode = 200;
    res.setHeader('Content-Type', m.mediaType);
    res.setHeader('Docker-Content-Digest', m.digest);
    res.setHeader('ETag', `"${m.digest}"`);
    res.setHeader('Content-Length', m.size);
    res.end();
    return;
  }
  const m = await ctx.service.readManifest(ctx.repo, ref);
  res.statusCode = 200;
  res.setHeader('Content-Type', m.mediaType);
  res.setHeader('Docker-Content-Digest', m.digest);
  res.setHeader('ETag', `"${m.digest}"`);
  res.setHeader('Content-Length', m.bytes.length);
  res.end(m.bytes);
};

export const putManifest: Handler = async (ctx) => {
  const ref = parseManifestRef(ctx.params[0]!);
  const max = ctx.limits.maxManifestBytes;
  const body = await readSmallBody(
    ctx,
    max,
    () => new RegistryError('MANIFEST_INVALID', { status: 413, message: `manifest exceeds ${max} bytes` }),
  );
  const put = await ctx.service.putManifest(ctx.repo, ref, body, ctx.req.headers['content-type']);
  const headers: Record<string, string> = {
    Location: `/v2/${ctx.repo}/manifests/${put.digest}`,
    'Docker-Content-Digest': put.digest,
  };
  if (put.subject) headers['OCI-Subject'] = put.subject;
  sendEmpty(ctx.res, 201, headers);
};

export const deleteManifest: Handler = async (ctx) => {
  const ref = parseManifestRef(ctx.params[0]!);
  await ctx.service.deleteManifest(ctx.repo, ref);
  sendEmpty(ctx.res, 202);
};
