# syntax=docker/dockerfile:1
# plugctl's image: Node.js and the compiled npm package on an otherwise empty root filesystem
# (image/rootfs.sh), running as a non-root user. The DaemonSet in manifests/ runs it.
#
#   make image    (docker build with VERSION and REVISION from package.json and git)
#
# It talks to the host's engine through its socket; the user (65532) needs the socket's group:
#   docker run -d --name plugctl --network host \
#     -v /var/run/docker.sock:/var/run/docker.sock --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /etc/plugctl:/etc/plugctl:ro -v /var/lib/plugctl:/var/lib/plugctl \
#     plugctl --labels-file /etc/plugctl/labels run -f /etc/plugctl/plugins.d
# (/var/lib/plugctl on the host owned by 65532). test/integration/image.test.ts builds the same root
# filesystem with image/rootfs.sh, imports it with this file's runtime settings and converges a
# plugin through the socket.

# the Node the project pins (package.json's devDependency `node`), on Debian as the test machine
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends binutils && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json README.md ./
# no install scripts: the only one fetches the pinned Node, which this image already is
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY bin/ bin/
COPY controller/ controller/
COPY image/rootfs.sh image/rootfs.sh
RUN npm pack --pack-destination /tmp \
    && bash image/rootfs.sh "$(command -v node)" /tmp/plugctl-*.tgz /rootfs

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
COPY --from=build /rootfs/ /
ENV NODE_COMPILE_CACHE=/tmp/node-compile-cache
ENV PLUGCTL_STATE_DIR=/var/lib/plugctl
USER 65532:65532
WORKDIR /var/lib/plugctl
ENTRYPOINT ["/usr/local/bin/node", "/usr/local/lib/node_modules/plugctl/bin/plugctl.js"]
CMD ["version"]
LABEL org.opencontainers.image.title="plugctl"
LABEL org.opencontainers.image.description="Keeps Docker managed plugins converged to DockerPlugin documents"
LABEL org.opencontainers.image.version="${VERSION}"
LABEL org.opencontainers.image.revision="${REVISION}"
LABEL org.opencontainers.image.licenses="Apache-2.0"
LABEL org.opencontainers.image.base.name="scratch"
