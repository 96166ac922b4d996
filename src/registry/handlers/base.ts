// GET /v2/ — the API version check (authentication only).
import { sendJson, type Handler } from '../http.js';

export const getBase: Handler = async (ctx) => {
  sendJson(ctx.res, 200, {}, 'application/json', ctx.method === 'HEAD');
};
