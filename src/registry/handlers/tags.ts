// GET /v2/<name>/tags/list?n=&last= — lexical tag listing with Link paging.
import { nextLink, parsePaging, sendJson, type Handler } from '../http.js';

export const listTags: Handler = async (ctx) => {
  const { n, last } = parsePaging(ctx.url);
  const page = await ctx.service.listTags(ctx.repo, n, last);
  if (page.next !== undefined) {
    ctx.res.setHeader('Link', nextLink(ctx.url.pathname, page.items.length, page.next));
  }
  sendJson(ctx.res, 200, { name: ctx.repo, tags: page.items }, 'application/json', ctx.method === 'HEAD');
};
