# syntax=docker/dockerfile:1
# docker build -t jit-access . && docker run -p 3000:3000 -e JIT_POLICY_FILE=… -e JIT_JWT_PUBLIC_KEY=… jit-access
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Build tools only (esbuild ships its binary inside a registry package, so --ignore-scripts is enough).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
COPY infra/build.ts ./infra/build.ts
RUN node infra/build.ts --no-measure

FROM node:24-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
WORKDIR /app
# dist/server.mjs bundles every dependency: the image carries no node_modules and no build tools.
COPY --from=build /app/dist/server.mjs /app/dist/server.mjs.map ./dist/
COPY --from=build /app/dist/static ./dist/static
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--enable-source-maps", "dist/server.mjs"]
