from messaging import services


def test_the_conversation_list_carries_each_last_message_without_a_query_per_row(
    api, sending_tenant, django_assert_max_num_queries
):
    for n in range(5):
        services.send_message(tenant=sending_tenant, to=f"1650555000{n}", type="text", text=f"first {n}")
        services.send_message(tenant=sending_tenant, to=f"1650555000{n}", type="text", text=f"last {n}")

    with django_assert_max_num_queries(8):  # the key lookup and a few fixed ones: not one per row
        rows = api.get("/api/v1/conversations").json()["results"]

    assert len(rows) == 5
    assert {r["last_message"]["text"] for r in rows} == {f"last {n}" for n in range(5)}
    assert all(r["last_message"]["direction"] == "out" for r in rows)
