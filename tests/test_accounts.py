"""Sign-up, log-in, log-out, tokens over HTTP."""

from __future__ import annotations

from tests.api import PASSWORD, Api

VIEWER = "{ viewer { handle displayName bio followersCount } }"


async def test_sign_up_log_in_and_viewer(api: Api) -> None:
    account = await api.sign_up("Mixed_Case")
    assert (await api.gql(VIEWER, token=account.token))["viewer"]["handle"] == "Mixed_Case"
    assert (await api.gql(VIEWER))["viewer"] is None

    logged_in = await api.gql(
        'mutation($p: String!) { logIn(handle: "mixed_case", password: $p) { token user { id } } }',
        {"p": PASSWORD},
    )
    assert logged_in["logIn"]["user"]["id"] == account.id
    other_token = logged_in["logIn"]["token"]
    assert (await api.gql(VIEWER, token=other_token))["viewer"]["handle"] == "Mixed_Case"


async def test_log_out_revokes_only_the_token_used(api: Api) -> None:
    account = await api.sign_up("leaver")
    second = (
        await api.gql(
            'mutation($p: String!) { logIn(handle: "leaver", password: $p) { token } }', {"p": PASSWORD}
        )
    )["logIn"]["token"]
    assert await api.gql("mutation { logOut }", token=account.token) == {"logOut": True}
    assert (await api.gql(VIEWER, token=account.token))["viewer"] is None
    codes = await api.error_codes('mutation { postTweet(text: "hi") { id } }', token=account.token)
    assert codes == ["UNAUTHENTICATED"]
    assert (await api.gql(VIEWER, token=second))["viewer"]["handle"] == "leaver"


async def test_wrong_password_and_unknown_handle(api: Api) -> None:
    await api.sign_up("someone")
    query = "mutation($h: String!, $p: String!) { logIn(handle: $h, password: $p) { token } }"
    assert await api.error_codes(query, {"h": "someone", "p": "wrong password"}) == ["UNAUTHENTICATED"]
    assert await api.error_codes(query, {"h": "nobody", "p": PASSWORD}) == ["UNAUTHENTICATED"]


async def test_forged_and_garbage_tokens_are_unauthenticated(api: Api) -> None:
    account = await api.sign_up("victim")
    forged = account.token[:-4] + ("AAAA" if not account.token.endswith("AAAA") else "BBBB")
    for token in (forged, "garbage", "a.b.c"):
        assert (await api.gql(VIEWER, token=token))["viewer"] is None
        codes = await api.error_codes('mutation { postTweet(text: "x") { id } }', token=token)
        assert codes == ["UNAUTHENTICATED"]


async def test_update_profile(api: Api) -> None:
    account = await api.sign_up("profiled")
    data = await api.gql(
        'mutation { updateProfile(displayName: " New Name ", bio: "Line one\\nline two") '
        "{ displayName bio } }",
        token=account.token,
    )
    assert data["updateProfile"] == {"displayName": "New Name", "bio": "Line one\nline two"}
