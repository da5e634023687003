"""Property-based: thousands of generated handler results (CloudFront at all four triggers, ALB in both header
modes) and malformed request heads, through one running proxy per mode. Every response must be CloudFront's (or
the ALB's) own status and X-Cache for that input, well framed, and the proxy must serve the next request.
The strategies, the proxy and the property live in tests/fuzz.py, for other test modules to reuse."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings

from tests.fuzz import FUZZ, AlbProgram, FuzzProxy, Program, alb_programs, cloudfront_programs, request_heads


@pytest.fixture(scope="module")
def cloudfront_proxy() -> Iterator[FuzzProxy]:
    with FuzzProxy.cloudfront() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def alb_proxy_under_fuzz() -> Iterator[FuzzProxy]:
    with FuzzProxy.alb() as proxy:
        yield proxy


@settings(FUZZ, max_examples=2000)
@given(program=cloudfront_programs())
def test_every_cloudfront_result_gets_cloudfronts_own_answer(cloudfront_proxy: FuzzProxy, program: Program) -> None:
    cloudfront_proxy.check_cloudfront(program)


@settings(FUZZ, max_examples=2000)
@given(program=alb_programs())
def test_every_alb_result_gets_the_load_balancers_own_answer(
    alb_proxy_under_fuzz: FuzzProxy, program: AlbProgram
) -> None:
    alb_proxy_under_fuzz.check_alb(program)


@settings(FUZZ, max_examples=500)
@given(head=request_heads())
def test_a_malformed_request_head_gets_an_answer_of_the_modes_own(
    cloudfront_proxy: FuzzProxy, alb_proxy_under_fuzz: FuzzProxy, head: bytes
) -> None:
    cloudfront_proxy.check_head(head)
    alb_proxy_under_fuzz.check_head(head)
