// /v2/<name>/blobs/uploads/[<id>] — POST (start, monolithic, mount), PATCH, PUT, GET status, DELETE.
import { parseDigest } from '../../oci/index.js';
import { parseRepositoryName } from '../names.js';
import { RegistryError, uploadRange } from '../errors.js';
import { contentLength, hasBody, parseUploadContentRange, sendEmpty, type Handler, type RequestContext } from '../http.js';
import { uploadLocation } from '../service.js';

function blobLocation(repo: string, digest: string): string {
  return `/v2/${repo}/blobs/${digest}`;
}

function sendSession(ctx: RequestContext, status: number, id: string, size: number): void {
  sendEmpty(ctx.res, status, {
    Location: uploadLocation(ctx.repo, id),
    Range: uploadRange(size),
    'Docker-Upload-UUID': id,
  });
}

/** Accepts only a digest parameter that parses; a missing one is DIGEST_INVALID too. */
function digestParam(ctx: RequestContext, name: string) {
  const raw = ctx.url.searchParams.get(name);
  if (raw === null) throw new RegistryError('DIGEST_INVALID', { message: `the ${name} parameter is required` });
  return parseDigest(raw);
}

export const startUpload: Handler = async (ctx) => {
  const { url } = ctx;
  const mount = url.searchParams.get('mount');
  if (mount !== null) {
    const digest = parseDigest(mount);
    const from = url.searchParams.get('from');
    if (from !== null) {
      const source = parseRepositoryName(from, ctx.limits.maxRepositoryNameLength);
      // Mount only what the caller may read; otherwise a plain upload that reveals nothing.
      const mayRead = await ctx.access.mayMount(ctx.req, ctx.principal, ctx.repo, source);
      if (mayRead && (await ctx.service.mountBlob(ctx.repo, source, digest))) {
        sendEmpty(ctx.res, 201, { Location: blobLocation(ctx.repo, digest.text), 'Docker-Content-Digest': digest.text });
        return;
      }
    }
  } else if (url.searchParams.has('digest')) {
    const digest = digestParam(ctx, 'digest');
    const { size } = await ctx.service.putMonolithic(ctx.repo, digest, ctx.req, contentLength(ctx.req));
    ctx.bytesIn.n = size;
    sendEmpty(ctx.res, 201, { Location: blobLocation(ctx.repo, digest.text), 'Docker-Content-Digest': digest.text });
    return;
  }
  const rec = await ctx.service.startUpload(ctx.repo, ctx.principal.name);
  sendSession(ctx, 202, rec.id, 0);
};

export const getUpload: Handler = async (ctx) => {
  const id = ctx.params[0]!;
  const size = await ctx.service.uploadStatus(ctx.repo, id);
  sendSession(ctx, 204, id, size);
};

export const patchUpload: Handler = async (ctx) => {
  const id = ctx.params[0]!;
  const range = parseUploadContentRange(ctx.req.headers['content-range']);
  const { size, appended } = await ctx.service.appendChunk(ctx.repo, id, ctx.req, range, contentLength(ctx.req));
  ctx.bytesIn.n = appended;
  sendSession(ctx, 202, id, size);
};

export const putUpload: Handler = async (ctx) => {
  const id = ctx.params[0]!;
  const digest = digestParam(ctx, 'digest');
  let finalChunk;
  if (hasBody(ctx.req)) {
    finalChunk = { body: ctx.req, range: parseUploadContentRange(ctx.req.headers['content-range']), length: contentLength(ctx.req) };
  }
  ctx.bytesIn.n = (await ctx.service.completeUpload(ctx.repo, id, digest, finalChunk)).appended;
  sendEmpty(ctx.res, 201, { Location: blobLocation(ctx.repo, digest.text), 'Docker-Content-Digest': digest.text });
};

export const deleteUpload: Handler = async (ctx) => {
  await ctx.service.cancelUpload(ctx.repo, ctx.params[0]!);
  sendEmpty(ctx.res, 204);
};
