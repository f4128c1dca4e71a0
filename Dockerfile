# syntax=docker/dockerfile:1
# docker build -t jit-access .   — then README, "Deploying and running", for docker run.
# test/container.test.ts performs these steps (there is no Docker engine on our build machines): keep to
# FROM, WORKDIR, COPY, RUN, ENV, USER, EXPOSE, HEALTHCHECK and CMD, which it interprets.

# Build: the toolchain (esbuild is a dev dependency). Nothing from this stage reaches the image but dist/.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts run: esbuild's binary arrives as an ordinary package for this platform.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
COPY infra/build.ts ./infra/build.ts
RUN node infra/build.ts --server-only

# Runtime: dist/server.mjs carries every production dependency, so the image has no node_modules, no npm
# install and no dev dependencies; its files belong to root, so the service cannot change its own code.
FROM node:24-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY --from=build /app/dist/server.mjs /app/dist/server.mjs.map ./dist/
COPY --from=build /app/dist/static ./dist/static
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# close-with-grace handles SIGTERM (docker stop): no new connections, in-flight requests finish, then exit 0.
CMD ["node", "dist/server.mjs"]
