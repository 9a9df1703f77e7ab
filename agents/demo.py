"""The agents' part of `manage.py seed_demo` (registered in AgentsConfig.ready()). Idempotent.

Every demo tenant gets a knowledge-base agent (the default, answering offline)
with a dozen entries a shop would need, and a human agent behind the keyword
"agent"; "menu" hands the conversation back to the knowledge base.
"""

from django.db import transaction

from agents import services
from agents.models import Agent

KB_AGENT = "Help desk"
HUMAN_AGENT = "Human"

ENTRIES = [
    ("What are your opening hours?", "We're open Monday to Friday 9:00-18:00 and Saturday 10:00-14:00.",
     ["hours", "open", "opening", "closed", "time"]),
    ("Where are you located?", "Our shop is at 12 Market Street, next to the central station.",
     ["address", "location", "shop", "store", "find"]),
    ("How much is shipping?", "Shipping is free above 50 EUR; below that it's a flat 4.90 EUR.",
     ["shipping", "delivery", "cost", "price", "postage"]),
    ("How long does delivery take?", "Orders ship within 1 business day and usually arrive in 2-4 days.",
     ["delivery", "shipping", "long", "days", "arrive"]),
    ("How can I track my order?", "You get a tracking link by email as soon as your order ships.",
     ["track", "tracking", "order", "status", "package", "parcel"]),
    ("Can I return an item?", "Yes: returns are free within 30 days. Reply 'agent' and we'll send you a label.",
     ["return", "exchange", "send back"]),
    ("When will I get my refund?", "Refunds reach your account 3-5 business days after your return arrives.",
     ["refund", "money", "back"]),
    ("Which payment methods do you accept?", "We accept cards, PayPal and bank transfer.",
     ["payment", "pay", "card", "paypal", "transfer"]),
    ("Do you have a discount code?", "Sign up to our newsletter for 10% off your first order.",
     ["discount", "coupon", "code", "sale", "offer"]),
    ("How do I change or cancel my order?", "Send us your order number within 2 hours of ordering and we'll change "
     "or cancel it.", ["cancel", "change", "modify", "order"]),
    ("Is my product under warranty?", "All products carry a 2-year warranty. Tell us what happened and we'll help.",
     ["warranty", "broken", "repair", "defect", "guarantee"]),
    ("How do I talk to a person?", "Write 'agent' at any time and a colleague will take over.",
     ["human", "person", "someone", "talk", "help"]),
]


@transaction.atomic
def seed_tenant(tenant) -> None:
    kb = Agent.objects.filter(tenant=tenant, name=KB_AGENT).first()
    if kb is None:
        kb = services.create_agent(
            tenant=tenant, name=KB_AGENT, kind=Agent.Kind.KNOWLEDGE_BASE, is_default=True,
            greeting=f"Hi! This is the {tenant.name} assistant (demo).",
            fallback_text="Sorry, I don't know that one yet. Write 'agent' to talk to a person.")
        for question, answer, tags in ENTRIES:
            services.create_knowledge_entry(agent=kb, question=question, answer=answer, tags=tags)
    if not Agent.objects.filter(tenant=tenant, name=HUMAN_AGENT).exists():
        human = services.create_agent(tenant=tenant, name=HUMAN_AGENT, kind=Agent.Kind.HUMAN,
                                      greeting="Connecting you with a colleague; they'll reply here shortly.")
        services.create_trigger(tenant=tenant, agent=human, kind="handoff", keywords=["agent", "human"],
                                match="contains", priority=10)
        services.create_trigger(tenant=tenant, agent=kb, kind="finish", keywords=["menu"], match="equals",
                                priority=10)


def seed(*, tenants) -> None:
    for tenant in tenants:
        seed_tenant(tenant)
