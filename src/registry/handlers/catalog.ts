// GET /v2/_catalog?n=&last= — repository listing with Link paging.
import { nextLink, parsePaging, sendJson, type Handler } from '../http.js';

export const listCatalog: Handler = async (ctx) => {
  const { n, last } = parsePaging(ctx.url);
  const page = await ctx.service.catalog(n, last);
  if (page.next !== undefined) {
    ctx.res.setHeader('Link', nextLink(ctx.url.pathname, page.items.length, page.next));
  }
  sendJson(ctx.res, 200, { repositories: page.items }, 'application/json', ctx.method === 'HEAD');
};
