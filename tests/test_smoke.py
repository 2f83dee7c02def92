from tests.api import Api


async def test_sign_up_post_and_read(api: Api) -> None:
    alice = await api.sign_up("alice")
    tweet = await api.post(alice, "hello #World @nobody")
    assert tweet["hashtags"] == ["world"]
    page = await api.feed_page(alice)
    assert [e["node"]["id"] for e in page["edges"]] == [tweet["id"]]
