// A minimal Node.js HTTP server: answers "Hello, World!" on port 8080.
import http from 'node:http';

const port = Number(process.env.PORT ?? 8080);
http
  .createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('Hello, World!\n');
  })
  .listen(port, () => console.log(`listening on ${port}`));
