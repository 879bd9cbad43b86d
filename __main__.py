"""The Shorts platform on Kubernetes: `pulumi up` runs this (the components live in infra/)."""

from infra.program import main

main()
