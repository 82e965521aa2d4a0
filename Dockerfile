# The operator image: the `ferry` binary and nothing else, on a distroless
# base (glibc, CA certificates, user 65532), run as that non-root user.
#
# The binary is built beforehand, as controller-rs does, rather than in a
# build stage: the image then holds the very binary the tests ran, the build
# reuses cargo's cache instead of compiling every dependency again inside a
# container, and building the image takes seconds. `hack/image.sh` does both
# steps; by hand:
#
#   cargo build --release --locked --bin ferry
#   docker build -t REPO:TAG .
#
# The binary links against glibc: build it on Debian 12 (bookworm, glibc
# 2.36) or older, the glibc of the default base below.
#
# BASE_IMAGE can point at another base with the same layout (hack/image.sh
# passes one assembled offline when no registry is reachable).
ARG BASE_IMAGE=gcr.io/distroless/cc-debian12:nonroot
FROM ${BASE_IMAGE}
ARG BINARY=target/release/ferry
COPY ${BINARY} /usr/local/bin/ferry
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/ferry"]
CMD ["run", "--log-format", "json"]
