"""The settings a Spring ``application.yml`` carries besides routes: everything under
``spring.cloud.gateway[.server.webflux]`` that SCG 5 honours, and Spring Boot's ``server.*`` /
``management.server.*``, read into ``schema.SpringSettings`` so the rest of the gateway never
sees YAML. Keys SCG has and meshgate does not honour are refused with the reason; misspelt
keys are located errors with the close matches."""

from __future__ import annotations
