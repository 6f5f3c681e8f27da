"""Phrase tables for the house-voice replies (`voice/`), used by `data/generate.py`.

Plain data, no logic. Which generator step reads what:

- `SIGN_OFF`, `BANNED`: the house-voice rules checked by `voice_problems` (`SIGN_OFF` also ends
  every chosen reply).
- `DISPLAY`: the product name a reply uses (`house_reply`, `rejected_reply`).
- `ACKS`, `CLOSERS`: `house_reply`, the chosen reply around the scenario's reply core.
- `GENERIC_*` (stiff boilerplate), `CASUAL_*` (far too casual) and `CURT*` (curt and
  dismissive): `rejected_reply`, the off-voice replies of the preference pairs.

The customer messages themselves come from the ticket tables (`tables/tickets.py`). The
generator draws from these lists with seeded random streams, so their order matters.
"""

from __future__ import annotations

SIGN_OFF = "— Brightbrew Support"
BANNED = ("unfortunately", "we apologize for any inconvenience", "valued customer")

# The name a reply uses for each product.
DISPLAY = {"grinder": "Aero grinder", "kettle": "Pour kettle", "scale": "Dot scale",
           "subscription": "bean subscription", "app": "Brightbrew app", "gift_card": "gift card"}


# ============================================================================ chosen replies

ACKS = {
    "negative": ["I'm sorry about the trouble with your <prod>.", "I'm sorry this has been such a hassle.",
                 "I'm sorry, that's not the experience we want you to have.",
                 "Thanks for your patience, and I'm sorry for the trouble."],
    "negative_low": ["Sorry that was hard to find on our site.",
                     "You're right, our site should make that clearer."],
    "neutral": ["Thanks for getting in touch.", "Thanks for the clear details.",
                "Thanks for letting us know.", "Thanks for your message."],
    "positive": ["Thanks for the kind words.", "Thank you, that's lovely to hear.",
                 "That's so kind of you to say."],
    "positive_owned": ["So glad you're enjoying the <prod>.", "It's lovely to hear you like the <prod>."],
}
CLOSERS = ["Reply here if anything else comes up.", "I'm here if you need anything else.",
           "Just reply to this email if you have questions.",
           "Let me know if there's anything else I can do."]


# ============================================================================ rejected replies

GENERIC_OPEN = ["Dear valued customer,", "Dear Customer,", "Dear Sir or Madam,", "Greetings,",
                "Hello,", "Dear {first},"]
GENERIC_TOPIC = {"billing": "billing enquiry", "shipping": "delivery enquiry",
                 "returns": "return request", "technical": "enquiry about your <prod>",
                 "account": "account enquiry"}
GENERIC_FIRST = ["Thank you for contacting Brightbrew Customer Care regarding your recent {topic}.",
                 "Thank you for reaching out to us about your {topic}.",
                 "We have received your message regarding your {topic}.",
                 "Thank you for taking the time to contact us concerning your {topic}."]
GENERIC_MIDDLE = [
    "We apologize for any inconvenience this may have caused.",
    "Your satisfaction is our highest priority and we truly value your business.",
    "Unfortunately, we are unable to provide further details at this time.",
    "Please be advised that your request has been forwarded to the relevant department for review.",
    "A member of our team will be in touch in due course.",
    "We appreciate your patience and understanding in this matter.",
    "Please refer to our Terms and Conditions for further information regarding our policies.",
    "We are committed to providing an exceptional customer experience at every stage.",
    "Rest assured that we take all customer feedback very seriously.",
    "As a valued customer, your feedback is extremely important to us.",
    "Please note that processing times may vary depending on a number of factors.",
    "We kindly ask that you allow sufficient time for your request to be processed.",
    "Unfortunately, we are experiencing a higher than usual volume of enquiries.",
]
GENERIC_END = ["Please do not hesitate to contact us should you require any further assistance.",
               "Should you have any further questions, please do not hesitate to get in touch.",
               "Thank you for choosing Brightbrew."]
GENERIC_CLOSE = ["Kind regards,\nThe Brightbrew Customer Care Team", "Sincerely,\nCustomer Support Department",
                 "Best regards,\nBrightbrew Support Team", "Warm regards,\nCustomer Experience Team",
                 SIGN_OFF]
CASUAL_OPEN = ["Hey {first}!!", "Heyyy {first} 👋", "Yo {first}!", "Hiya {first}!", "OMG hi {first}!"]
CASUAL_OPEN_ANON = ["Hey there!!", "Heyyy 👋", "Hiya!", "Hey hey!"]
CASUAL_REACT = {"negative": ["Ugh, that's the worst 😬", "Yikes!! So sorry lol.", "Oof, our bad!! 🙈"],
                "positive": ["Aww thank u!! 🥰", "Yesss love that!! ☕☕", "You're the best!!"],
                "neutral": ["No worries!", "Gotcha 👍", "Ooh good q!"]}
CASUAL_CORE = {
    "billing": ["Money stuff is such a pain, we'll sort it out soon-ish!",
                "We'll fix the payment thingy, promise 🤞"],
    "shipping": ["Couriers, am I right?? 🙄 It'll turn up eventually!",
                 "Your parcel is def on its way somewhere lol."],
    "returns": ["Just chuck it back in a box and send it over, easy peasy!",
                "Returns are super chill, no stress!!"],
    "technical": ["Have you tried turning it off and on again? 😂",
                  "Give it a good shake, that usually works lol."],
    "account": ["Passwords are the worst haha, just try again!",
                "Logins, ugh!! Try clearing your cookies or whatever 🤷"],
    "any": ["I'll get it sorted within 2 days, pinky promise!! 🤞",
            "Leave it with me, we'll get back to you super soon!"],
}
CASUAL_CLOSE = ["Cheers!! ☕", "Later! ✌️", "xoxo the Brightbrew crew 💛", "Stay caffeinated!! ☕🔥",
                SIGN_OFF]
CURT = ["That's covered in our FAQ.", "Please read the manual.", "We've already answered this.",
        "Policy is policy.", "Nothing we can do about that.",
        "That's not something we can help with.", "Check the website.",
        "It says so on the order page.", "Send it back if you don't want it.",
        "Couriers are not our responsibility.", "That's how the product works.",
        "Try again later."]
CURT_OPEN = ["{first},", "Hi {first},", "Hello.", ""]
CURT_OPEN_ANON = ["Hello.", ""]
CURT_CLOSE = [SIGN_OFF, "Support", "", "Regards"]
