// GET /v2/<name>/referrers/<digest>[?artifactType=] — an OCI index of the manifests whose subject is <digest>.
// Never 404: no referrers (or no repository) is an empty index.
import { parseDigest } from '../../oci/index.js';
import { MediaType } from '../../oci/index.js';
import { sendJson, type Handler } from '../http.js';

export const getReferrers: Handler = async (ctx) => {
  const subject = parseDigest(ctx.params[0]!);
  const artifactType = ctx.url.searchParams.get('artifactType') ?? undefined;
  const manifests = await ctx.service.referrers(ctx.repo, subject, artifactType);
  if (artifactType !== undefined) ctx.res.setHeader('OCI-Filters-Applied', 'artifactType');
  sendJson(ctx.res, 200, { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }, MediaType.OciIndex, ctx.method === 'HEAD');
};
