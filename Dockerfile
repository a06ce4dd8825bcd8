# The model-rollout image: one entry point (`model-rollout`) for the worker, the gateway and every CLI
# command. Production dependencies only; runs as the image's unprivileged `node` user (uid 1000).
#   docker build -t model-rollout .
#   docker run --rm model-rollout gateway --help
# The project ships TypeScript run through tsx (a production dependency), so there is no build step: the
# first stage installs the dependencies (and has npm's cache and any build tools), the second copies them.

FROM node:20-bookworm-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY src ./src
COPY activities ./activities
COPY workflows ./workflows
RUN ln -s /app/bin/model-rollout.js /usr/local/bin/model-rollout
# Numeric, so that Kubernetes can check runAsNonRoot. The worker bundles its workflow code at start: the
# native compiler it uses keeps a copy in $HOME/.cache (/home/node, owned by this user); tsx caches its
# transforms in /tmp.
USER 1000:1000
ENTRYPOINT ["model-rollout"]
CMD ["--help"]
